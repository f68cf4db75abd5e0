package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
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
	// Enrollment, when not nil, is the enrollment the record tells of, stored with it by
	// AppendEvidence. It is not part of the record, and never read back.
	Enrollment *Enrollment
}

// Enrollment is an agent to store, and the token use to take, together with the evidence
// record of its enrollment (see AppendEvidence).
type Enrollment struct {
	Hash   []byte     // SHA-256 of the token's secret
	Source netip.Addr // where the agent enrolls from
	Now    time.Time  // when it enrolls
	Agent  Agent      // names the token: TokenID, Tenant and Tier
}

// EnrollmentError is AppendEvidence's error when the enrollment of record Seq cannot be
// stored; Err is ErrTokenRefused, ErrExists, ErrNotFound or another failure. Nothing was
// stored.
type EnrollmentError struct {
	Seq uint64
	Err error
}

func (e *EnrollmentError) Error() string {
	return fmt.Sprintf("enrollment of evidence record %d: %v", e.Seq, e.Err)
}

func (e *EnrollmentError) Unwrap() error { return e.Err }

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
	// the head is no longer after. In the same transaction, for each record with an
	// Enrollment, in order, it does what EnrollAgent does for its agent: when any of them
	// fails, nothing at all is stored and the error is an *EnrollmentError naming the
	// first record whose enrollment failed.
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
