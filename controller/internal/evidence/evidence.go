// Package evidence is the controller side of Ward's tamper-evident evidence log: the
// Recorder that every component calls to record what happened, the checkpointer that signs
// the head of each tenant's log, and the exporter that writes bundles for auditors. The
// format itself (records, hashing, checkpoints, bundles, offline verification) lives in
// github.com/wardsec/ward/pkg/evidence.
package evidence

import (
	"context"
	"errors"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
)

// Record types. Type names are stable strings, part of the evidence format: an auditor
// filters on them. Add new ones here, never rename one.
const (
	// Agents and enrollment.
	TypeAgentEnrolled     = "agent.enrolled"     // subject: agent id; data: host, token id
	TypeAgentRenewed      = "agent.renewed"      // subject: agent id; data: serial, expiry
	TypeAgentRevoked      = "agent.revoked"      // subject: agent id; data: reason
	TypeAgentRolesSet     = "agent.roles_set"    // subject: agent id; data: from, to
	TypeEnrollmentRefused = "enrollment.refused" // subject: token id; data: reason

	// Checks and incidents (the remediation loop).
	TypeCheckChanged      = "check.changed"      // subject: agent id/check id; data: from, to
	TypeIncidentOpened    = "incident.opened"    // subject: incident id
	TypeIncidentEscalated = "incident.escalated" // subject: incident id
	TypeIncidentApproved  = "incident.approved"  // subject: incident id; actor: approver
	TypeIncidentResolved  = "incident.resolved"  // subject: incident id
	TypeCommandIssued     = "command.issued"     // subject: command id; data: agent, steps
	TypeCommandResult     = "command.result"     // subject: command id; data: exit, output
	TypeBaselinePublished = "baseline.published" // subject: baseline id/version
	TypeBaselineApplied   = "baseline.applied"   // subject: agent id; data: baseline version

	// Discovery.
	TypeDiscoveryCompleted = "discovery.completed" // subject: collector agent id
	TypeDeviceClassified   = "device.classified"   // subject: device key (MAC or address)

	// Operator actions through the admin API.
	TypeTenantCreated   = "tenant.created"   // subject: tenant id
	TypeTokenCreated    = "token.created"    // subject: token id (never the secret)
	TypeTokenRevoked    = "token.revoked"    // subject: token id
	TypeOperatorCreated = "operator.created" // subject: operator name; data: role, tenants
	TypeOperatorRevoked = "operator.revoked" // subject: operator name

	// The log itself.
	TypeCheckpoint = "log.checkpoint" // subject: tenant; data: size, head (signed apart)
	// TypeWitnessRefused: a collector refused a checkpoint as inconsistent with its copy.
	TypeWitnessRefused = "witness.refused" // subject: witness agent id; data: size, reason
	// TypeArchived: records were written to an archive bundle that the controller
	// verified and keeps. Actor: the operator who asked. Subject: the tenant; data:
	// first_seq, last_seq, head, last_time, manifest_sha256, file.
	TypeArchived = "log.archived"
	// TypePruned: archived records past the retention period are about to leave the live
	// log (recorded before any is removed). Actor: the operator who asked. Subject: the
	// tenant; data: through_seq, head, archives (their manifest SHA-256s),
	// retention_years, cutoff.
	TypePruned = "log.pruned"
)

// ActorKind says who acted.
type ActorKind string

// Actor kinds.
const (
	ActorAgent      ActorKind = "agent"      // ID: agent id
	ActorOperator   ActorKind = "operator"   // ID: operator name
	ActorController ActorKind = "controller" // ID: controller name (automatic decisions)
)

// Actor is who caused a record.
type Actor struct {
	Kind ActorKind
	ID   string
}

// Entry is what a caller records. Tenant, Type and Actor are required.
type Entry struct {
	Tenant  string // tenant id; the log the entry goes to
	Type    string // one of the Type constants
	Actor   Actor
	Subject string // what the record is about: an agent id, incident id, token id, ...
	// Data is the typed payload; it must marshal with encoding/json. The recorder scrubs
	// every string in it of PHI (pkg/scrub) before storing, so callers may pass banners,
	// command output and descriptions as they are. Nil records no data. Never put secrets
	// (token secrets, keys) in it.
	Data any
	// Enrollment, when not nil, is the enrollment the entry records (TypeAgentEnrolled):
	// the store keeps it and the record in one transaction, or neither. When the store
	// refuses it, Record's error wraps the store's reason (store.ErrTokenRefused, ...).
	// A Recorder that cannot store it (Discard) fails the entry.
	Enrollment *store.Enrollment
}

// Receipt says where an entry landed.
type Receipt struct {
	Tenant string
	Seq    uint64    // 1 for a tenant's first record
	Hash   [32]byte  // the chain hash of the record (pkg/evidence)
	Time   time.Time // the record's time
}

// Recorder appends entries to the tenant's evidence log. Record returns only once the
// record is durable, so a caller that records before acknowledging an action never
// acknowledges an unrecorded one. An error means nothing was recorded; the caller should
// fail the action. Implementations are safe for concurrent use.
type Recorder interface {
	Record(ctx context.Context, e Entry) (Receipt, error)
}

// Discard is a Recorder that records nothing, for tests and tools without a log.
var Discard Recorder = discard{}

type discard struct{}

func (discard) Record(_ context.Context, e Entry) (Receipt, error) {
	if e.Enrollment != nil {
		return Receipt{}, errors.New("evidence: discard cannot store an enrollment")
	}
	return Receipt{Tenant: e.Tenant}, nil
}
