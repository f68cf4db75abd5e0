// Package remediation runs the controller's side of the remediation loop: it turns
// committed drift reports into incidents (one per agent and check, deduplicated), decides
// by policy whether to remediate automatically, wait for an operator's approval or
// escalate, builds and signs commands with the policy key, stores them before sending them
// over the agent's stream, resends them after reconnects until a result arrives or they
// expire, and resolves incidents when the triggering check passes again.
//
// Policy:
//
//   - tier 1 and 2 agents are remediated automatically when the runbook allows it;
//     tier 3 agents, and runbooks that require approval, wait for an operator;
//   - at most Config.MaxConcurrent incidents of a tenant are remediating at once; the rest
//     stay open and are picked up as slots free;
//   - a check that turned from passing to failing more than Config.FlapLimit times within
//     Config.FlapWindow is escalated instead of remediated again;
//   - a failed, refused, timed-out or expired command, a verification that still fails and
//     a check without a runbook escalate the incident;
//   - an agent offline past Config.OfflineAfter gets an AGENT-OFFLINE incident, resolved
//     when it connects again.
//
// Every decision is written through the Recorder, so that the evidence log can chain it,
// and an action is taken only once its record is appended: a command is recorded as
// issued before it is stored and sent, an approval or automatic remediation before its
// command, an escalation before the incident changes and the webhook is queued, a
// resolution before the incident changes, a command's result before it is stored. When
// the Recorder fails, the action is not taken and the caller gets an error wrapping
// ErrEvidence (an operator's call answers Unavailable); an automatic remediation is
// tried again at the next sweep.
package remediation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Defaults for Config's optional fields.
const (
	DefaultMaxConcurrent = 5
	DefaultFlapLimit     = 3
	DefaultFlapWindow    = 24 * time.Hour
	DefaultCommandTTL    = time.Hour
	DefaultStepTimeout   = 2 * time.Minute
	DefaultSweepInterval = 30 * time.Second
	DefaultOfflineAfter  = 10 * time.Minute
)

// CommandPayloadType is the SignedPayload type of a command.
const CommandPayloadType = "ward.v1.CommandSpec"

// ControllerActor is the actor of decisions the controller takes by itself.
const ControllerActor = "controller"

// Errors callers branch on.
var (
	// ErrNotConnected is what a Sender returns for an agent without an open stream.
	ErrNotConnected = errors.New("remediation: agent not connected")
	// ErrState means the incident is not in a state that allows the operation.
	ErrState = errors.New("remediation: incident state does not allow this")
	// ErrNoRunbook means no runbook is known by that id or for that check.
	ErrNoRunbook = errors.New("remediation: no runbook")
	// ErrEvidence means a decision could not be appended to the evidence log, so the
	// action it records was not taken.
	ErrEvidence = errors.New("remediation: decision not recorded in the evidence log; " +
		"nothing was done")
)

// Step is one runbook step: an action compiled into the agent and its parameters.
type Step struct {
	Action  string
	Params  map[string]string
	Timeout time.Duration // zero: DefaultStepTimeout
}

// Runbook is what the engine needs of a runbook.
type Runbook struct {
	ID    string
	Title string
	// Checks the runbook answers.
	Checks []string
	// RequiresApproval is true unless the runbook may run without an operator's approval.
	RequiresApproval bool
	Steps            []Step
	// Verify lists the checks the agent re-runs after the steps; empty means Checks.
	Verify []string
}

// Catalog tells which runbook remediates a check for a tenant. Implementations are safe
// for concurrent use.
type Catalog interface {
	// RunbookFor returns the runbook for check in tenant's baseline; ok is false when the
	// check has none.
	RunbookFor(ctx context.Context, tenant, check string) (rb Runbook, ok bool, err error)
	// Runbook returns the runbook with id; ok is false when there is none.
	Runbook(id string) (rb Runbook, ok bool)
	// Severity returns the check's severity in tenant's baseline, "" when unknown.
	Severity(ctx context.Context, tenant, check string) string
	// Excluded reports whether tenant excludes check (an exception with a recorded
	// reason): its results are stored but open no incident.
	Excluded(ctx context.Context, tenant, check string) bool
}

// Decision is one decision of the loop, for the evidence log.
type Decision struct {
	At       time.Time
	Tenant   string
	Agent    string
	Incident string
	Check    string
	Command  string
	Runbook  string
	// Action: "incident_opened", "auto_remediated", "awaiting_approval", "approved",
	// "escalated", "resolved", "command_issued", "command_result", "verified".
	Action string
	Actor  string // operator name or ControllerActor
	Detail string
}

// Recorder records decisions. Record must be safe for concurrent use and return only once
// the record is durable; when it fails, the action the decision records is not taken.
type Recorder interface {
	Record(ctx context.Context, d Decision) error
}

// Signer signs payloads with the policy key (ca.PolicyKey implements it).
type Signer interface {
	Sign(payloadType string, payload []byte) (*wardv1.SignedPayload, error)
}

// Sender hands a message to an agent's open stream (agentapi.Server implements it). Send
// returns an error wrapping ErrNotConnected when the agent has no stream here.
type Sender interface {
	Send(agentID string, m *wardv1.ConnectResponse) error
}

// Escalation is what the engine tells the escalation channel about an incident.
type Escalation struct {
	Incident store.Incident
	Agent    store.Agent
	// Tried lists the commands issued for the incident, oldest first.
	Tried []store.Command
	// Reason says why the incident is escalated.
	Reason string
}

// Escalator delivers escalations (package escalation implements it). Escalate must not
// block for long: deliveries and their retries happen elsewhere. It returns an error when
// it could not take the escalation for delivery.
type Escalator interface {
	Escalate(ctx context.Context, e Escalation) error
}

// Store is the durable state the engine uses.
type Store interface {
	store.Agents
	store.Remediation
}

// Config configures an Engine. Fields marked required must be set.
type Config struct {
	Store   Store   // required
	Catalog Catalog // required
	Signer  Signer  // required
	Sender  Sender  // required
	// Recorder records decisions; nil records nothing.
	Recorder Recorder
	// Escalator delivers escalations; nil delivers none (the incident still turns
	// escalated).
	Escalator Escalator

	MaxConcurrent int           // per tenant; default DefaultMaxConcurrent
	FlapLimit     int           // default DefaultFlapLimit
	FlapWindow    time.Duration // default DefaultFlapWindow
	CommandTTL    time.Duration // default DefaultCommandTTL
	// SweepInterval is how often Run expires commands, fills free remediation slots and
	// looks for offline agents; default DefaultSweepInterval.
	SweepInterval time.Duration
	// OfflineAfter is how long an agent may be offline before an incident opens; default
	// DefaultOfflineAfter.
	OfflineAfter time.Duration
	// CollectorOwners are the store.Command.Owner values whose commands (an SSH bootstrap)
	// are resent only to a session with the collector role; others keep them for later.
	CollectorOwners []string

	Log   *slog.Logger     // required
	Clock func() time.Time // nil: time.Now
}

// Engine is the remediation loop. It is safe for concurrent use.
type Engine struct {
	cfg   Config
	st    Store
	log   *slog.Logger
	clock func() time.Time

	mu      sync.Mutex               // guards the fields below
	slots   map[string]int           // remediating incidents per tenant, loaded from the store once
	waiting map[string]bool          // tenants with incidents deferred for want of a slot
	owners  map[string]ResultHandler // by store.Command.Owner; see SetResultHandler
}

// New checks cfg, fills its defaults and returns an Engine.
func New(cfg Config) (*Engine, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("remediation: no store")
	case cfg.Catalog == nil:
		return nil, errors.New("remediation: no catalog")
	case cfg.Signer == nil:
		return nil, errors.New("remediation: no signer")
	case cfg.Sender == nil:
		return nil, errors.New("remediation: no sender")
	case cfg.Log == nil:
		return nil, errors.New("remediation: no logger")
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.FlapLimit <= 0 {
		cfg.FlapLimit = DefaultFlapLimit
	}
	defaultDuration(&cfg.FlapWindow, DefaultFlapWindow)
	defaultDuration(&cfg.CommandTTL, DefaultCommandTTL)
	defaultDuration(&cfg.SweepInterval, DefaultSweepInterval)
	defaultDuration(&cfg.OfflineAfter, DefaultOfflineAfter)
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Engine{cfg: cfg, st: cfg.Store, log: cfg.Log, clock: cfg.Clock,
		slots: map[string]int{}, waiting: map[string]bool{}}, nil
}

func defaultDuration(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// takeSlot takes one of tenant's MaxConcurrent remediation slots and reports whether
// it got one, and how many are in use. The count is loaded from the store the first time
// a tenant is seen and kept in memory after that, so no lock is held across a write.
//
// Known limitation: the count is per controller process; two controllers sharing a
// store would each allow MaxConcurrent.
func (e *Engine) takeSlot(ctx context.Context, tenant string) (bool, int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()

	n, ok := e.slots[tenant]
	if !ok {
		var err error
		n, err = e.st.CountIncidents(ctx, tenant, store.IncidentRemediating)
		if err != nil {
			return false, 0, err
		}
	}
	if n >= e.cfg.MaxConcurrent {
		e.slots[tenant] = n
		e.waiting[tenant] = true
		return false, n, nil
	}
	e.slots[tenant] = n + 1
	return true, n + 1, nil
}

// releaseSlot gives back a slot taken by takeSlot: its incident left remediating, or was
// never moved to it.
func (e *Engine) releaseSlot(tenant string) {
	e.mu.Lock()
	defer e.mu.Unlock()

	if e.slots[tenant] > 0 {
		e.slots[tenant]--
	}
}

// record writes d through the Recorder and returns an error wrapping ErrEvidence when it
// could not.
func (e *Engine) record(ctx context.Context, d Decision) error {
	if d.At.IsZero() {
		d.At = e.clock()
	}
	if d.Actor == "" {
		d.Actor = ControllerActor
	}
	if e.cfg.Recorder == nil {
		return nil
	}
	if err := e.cfg.Recorder.Record(ctx, d); err != nil {
		e.log.Error("decision not recorded; its action is not taken", "action", d.Action,
			"incident", d.Incident, "command", d.Command, "err", err)
		return fmt.Errorf("%w: %s: %w", ErrEvidence, d.Action, err)
	}
	return nil
}

// newID returns prefix followed by 16 random hex digits.
func newID(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Run expires commands, fills free remediation slots and opens incidents for offline
// agents every SweepInterval until ctx ends; it returns nil then.
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(e.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := e.Sweep(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("remediation sweep", "err", err)
			}
		}
	}
}
