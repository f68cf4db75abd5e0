package store

import (
	"context"
	"errors"
	"time"
)

// ErrEvidenceConflict means an evidence append did not start at the log's current head:
// another writer appended first. The caller reloads the head and rebuilds its records.
var ErrEvidenceConflict = errors.New("store: evidence log head moved")

// EvidenceRecord is one stored record of a tenant's evidence log.
type EvidenceRecord struct {
	Seq  uint64
	Hash [32]byte // chain hash (pkg/evidence)
	Body []byte   // canonical body (pkg/evidence Record.Body)
}

// EvidenceHead is the end of a tenant's log: Size records, the last with chain hash Hash
// (zero when Size is 0).
type EvidenceHead struct {
	Size uint64
	Hash [32]byte
}

// EvidenceCheckpoint is a signed checkpoint of a tenant's log.
type EvidenceCheckpoint struct {
	Tenant    string    `json:"tenant"`
	Size      uint64    `json:"size"`
	Head      [32]byte  `json:"head"`
	Time      time.Time `json:"time"`
	Signature []byte    `json:"signature"` // ECDSA over the checkpoint text
}

// EvidenceWitness is a collector agent's countersignature of a checkpoint.
type EvidenceWitness struct {
	Tenant    string    `json:"tenant"`
	Size      uint64    `json:"size"`
	Head      [32]byte  `json:"head"`
	Agent     string    `json:"agent"`
	Time      time.Time `json:"time"`      // when the controller stored it
	Signature []byte    `json:"signature"` // by the agent key over the checkpoint text
	CertDER   [][]byte  `json:"cert_der"`  // the agent's certificate chain, leaf first
}

// Evidence stores the per-tenant evidence logs (records, checkpoints, witness
// signatures). Nothing is deleted through it: only EvidenceRetention.PruneEvidence removes
// records, archived ones. Implementations are safe for concurrent use and every write is
// durable before it returns.
type Evidence interface {
	// EvidenceHead returns the head of tenant's log; the zero head when it is empty.
	EvidenceHead(ctx context.Context, tenant string) (EvidenceHead, error)
	// AppendEvidence stores recs, which must be numbered after.Size+1, after.Size+2, ...,
	// in one transaction, and moves the head to the last of them. ErrEvidenceConflict when
	// the head is no longer after.
	AppendEvidence(ctx context.Context, tenant string, after EvidenceHead,
		recs []EvidenceRecord) error
	// ListEvidence returns up to limit records with Seq > after, in order; limit <= 0
	// means no limit. Records up to the log's base (EvidenceRetention.EvidenceBase) are
	// never returned, even while a prune is removing them.
	ListEvidence(ctx context.Context, tenant string, after uint64, limit int) (
		[]EvidenceRecord, error)
	// PutCheckpoint stores a checkpoint (by tenant and size; the same size again is
	// ErrExists).
	PutCheckpoint(ctx context.Context, cp EvidenceCheckpoint) error
	// ListCheckpoints returns the checkpoints with Size > after, by size.
	ListCheckpoints(ctx context.Context, tenant string, after uint64) (
		[]EvidenceCheckpoint, error)
	// PutWitness stores a witness signature (one per checkpoint size and agent; a second
	// replaces the first).
	PutWitness(ctx context.Context, w EvidenceWitness) error
	// ListWitnesses returns the witness signatures of checkpoints with Size > after, by
	// size then agent.
	ListWitnesses(ctx context.Context, tenant string, after uint64) ([]EvidenceWitness, error)
}
