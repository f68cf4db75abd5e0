package store

import (
	"context"
	"time"
)

// EvidenceArchive is an archive file of a tenant's oldest records that the controller
// wrote and verified: records FirstSeq to LastSeq, ending at the signed checkpoint of
// size LastSeq whose head is Head.
type EvidenceArchive struct {
	Tenant         string    `json:"tenant"`
	FirstSeq       uint64    `json:"first_seq"`
	LastSeq        uint64    `json:"last_seq"`
	Head           [32]byte  `json:"head"` // chain hash of record LastSeq
	LastTime       time.Time `json:"last_time"`
	ManifestSHA256 string    `json:"manifest_sha256"` // of the archive's manifest.json, hex
	File           string    `json:"file"`            // file name in the archive directory
	Created        time.Time `json:"created"`
	Size           int64     `json:"size"` // bytes
}

// EvidenceRetention keeps the archives of the evidence logs and removes archived records
// from the live store. Implementations are safe for concurrent use; writes are durable
// before they return.
type EvidenceRetention interface {
	// PutEvidenceArchive stores an archive's description (by tenant and LastSeq; the same
	// again is ErrExists).
	PutEvidenceArchive(ctx context.Context, a EvidenceArchive) error
	// ListEvidenceArchives returns the tenant's archives by LastSeq.
	ListEvidenceArchives(ctx context.Context, tenant string) ([]EvidenceArchive, error)
	// EvidenceBase returns where the live log starts: records up to Size were pruned,
	// Hash is the chain hash of record Size. The zero head when nothing was pruned.
	EvidenceBase(ctx context.Context, tenant string) (EvidenceHead, error)
	// PruneEvidence deletes the records up to base.Size and makes base the log's base.
	// base must lie within the log (not past its head, not before the current base); the
	// base is stored first, so a prune cut short is finished by calling again.
	PruneEvidence(ctx context.Context, tenant string, base EvidenceHead) error
}
