// Package baselines keeps each tenant's baseline on the controller: new tenants start on
// the shipped hipaa-v1; an operator pushes another document, which is validated (a
// broken one is refused with its file, line and reason, and the current one stays),
// stored, signed with the policy key and sent to every connected agent of the tenant.
// Agents that connect later, or report another version, get the current one again.
// Exclusions (checks a tenant does not apply, each with a recorded reason) come from the
// store and from the document's exceptions.
//
// It also serves the remediation engine as its Catalog: which runbook remediates a
// check, and the check's severity, in the tenant's current baseline.
package baselines

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/remediation"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/baseline"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/runbook"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// PayloadType is the SignedPayload type of a baseline update.
const PayloadType = "ward.v1.BaselineSpec"

// Store is the durable state the package uses.
type Store interface {
	store.Agents
	store.Baselines
}

// Config configures a Manager.
type Config struct {
	Store  Store              // required
	Signer remediation.Signer // required: the policy key
	Sender remediation.Sender // required: agent streams
	// Runbooks are the runbooks known; nil means the shipped ones.
	Runbooks runbook.Set
	// Recorder records publications; nil records nothing.
	Recorder remediation.Recorder
	Log      *slog.Logger     // required
	Clock    func() time.Time // nil: time.Now
}

// Manager is the per-tenant baseline service and the remediation Catalog. It is safe
// for concurrent use.
type Manager struct {
	cfg      Config
	log      *slog.Logger
	clock    func() time.Time
	runbooks runbook.Set
	shipped  *baseline.Baseline

	mu      sync.Mutex             // guards current and excluded
	current map[string]tenantState // by tenant, read from the store on first use
}

// tenantState is what the Manager keeps of a tenant between calls.
// Known limitation: it is per controller process; a push made through another
// controller sharing the store is seen here only after a restart.
type tenantState struct {
	b        *baseline.Baseline
	doc      []byte
	excluded map[string]bool // exclusions stored for the tenant
}

var _ remediation.Catalog = (*Manager)(nil)

// New checks cfg and returns a Manager.
func New(cfg Config) (*Manager, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("baselines: no store")
	case cfg.Signer == nil:
		return nil, errors.New("baselines: no signer")
	case cfg.Sender == nil:
		return nil, errors.New("baselines: no sender")
	case cfg.Log == nil:
		return nil, errors.New("baselines: no logger")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	rbs := cfg.Runbooks
	if rbs == nil {
		var err error
		if rbs, err = runbook.Shipped(); err != nil {
			return nil, fmt.Errorf("baselines: shipped runbooks: %w", err)
		}
	}
	shipped, err := baseline.Parse(baseline.ShippedName, baseline.ShippedDocument(),
		baseline.Options{Runbooks: rbs.Has})
	if err != nil {
		return nil, fmt.Errorf("baselines: shipped baseline: %w", err)
	}
	return &Manager{cfg: cfg, log: cfg.Log, clock: cfg.Clock, runbooks: rbs,
		shipped: shipped, current: map[string]tenantState{}}, nil
}

// Current returns the tenant's baseline and its document: the one pushed last, or the
// shipped hipaa-v1 when none was.
func (m *Manager) Current(ctx context.Context, tenant string) (*baseline.Baseline, []byte,
	error) {
	ts, err := m.state(ctx, tenant)
	if err != nil {
		return nil, nil, err
	}
	return ts.b, ts.doc, nil
}

// state returns what the Manager knows of tenant, loading it from the store first.
func (m *Manager) state(ctx context.Context, tenant string) (tenantState, error) {
	m.mu.Lock()
	ts, ok := m.current[tenant]
	m.mu.Unlock()
	if ok {
		return ts, nil
	}

	ts = tenantState{b: m.shipped, doc: baseline.ShippedDocument(),
		excluded: map[string]bool{}}
	v, err := m.cfg.Store.CurrentBaseline(ctx, tenant)
	switch {
	case err == nil:
		b, err := baseline.Parse(v.BaselineID+".yaml", v.Document,
			baseline.Options{Runbooks: m.runbooks.Has})
		if err != nil {
			return ts, fmt.Errorf("baselines: stored baseline of %s: %w", tenant, err)
		}
		ts.b, ts.doc = b, v.Document
	case !errors.Is(err, store.ErrNotFound):
		return ts, fmt.Errorf("baselines: %w", err)
	}
	ex, err := m.cfg.Store.ListExclusions(ctx, tenant)
	if err != nil {
		return ts, fmt.Errorf("baselines: %w", err)
	}
	for _, e := range ex {
		ts.excluded[e.Check] = true
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	m.current[tenant] = ts
	return ts, nil
}

// forget drops what the Manager keeps of tenant, after a change in the store.
func (m *Manager) forget(tenant string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.current, tenant)
}

// Push validates doc and, when it is sound, makes it the tenant's baseline and sends it,
// signed, to every connected agent of the tenant. A document with a mistake is refused
// with its problems (file:line: reason), and the current baseline stays. The version must
// differ from the current one.
func (m *Manager) Push(ctx context.Context, tenant, file string, doc []byte,
	actor string) (*baseline.Baseline, error) {
	b, err := baseline.Parse(file, doc, baseline.Options{Runbooks: m.runbooks.Has})
	if err != nil {
		return nil, err
	}
	cur, _, err := m.Current(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if cur.ID == b.ID && cur.Version == b.Version {
		return nil, fmt.Errorf("baselines: %s %s is already current; raise the version",
			b.ID, b.Version)
	}

	now := m.clock()
	err = m.record(ctx, remediation.Decision{At: now, Tenant: tenant,
		Action: "baseline_published", Actor: actor, Detail: b.ID + " " + b.Version})
	if err != nil {
		return nil, err
	}
	err = m.cfg.Store.PutBaseline(ctx, store.BaselineVersion{Tenant: tenant,
		BaselineID: b.ID, Version: b.Version, Document: doc, PublishedAt: now,
		PublishedBy: actor})
	m.forget(tenant)
	if err != nil {
		return nil, fmt.Errorf("baselines: %w", err)
	}
	m.log.Info("baseline published", logkey.Tenant, tenant, "baseline", b.ID,
		logkey.Version, b.Version, "actor", actor)

	sent, err := m.publish(ctx, tenant)
	if err != nil {
		return b, err
	}
	m.log.Info("baseline sent", logkey.Tenant, tenant, logkey.Version, b.Version,
		logkey.Count, sent)
	return b, nil
}

// publish sends the tenant's current baseline to each of its connected agents and
// returns how many took it.
func (m *Manager) publish(ctx context.Context, tenant string) (int, error) {
	agents, err := m.cfg.Store.ListAgents(ctx, tenant)
	if err != nil {
		return 0, fmt.Errorf("baselines: %w", err)
	}
	msg, err := m.update(ctx, tenant)
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, a := range agents {
		if a.Revoked {
			continue
		}
		if m.cfg.Sender.Send(a.ID, msg) == nil {
			sent++
		}
	}
	return sent, nil
}

// update returns the signed baseline_update message of tenant's current baseline.
func (m *Manager) update(ctx context.Context, tenant string) (*wardv1.ConnectResponse,
	error) {
	b, doc, err := m.Current(ctx, tenant)
	if err != nil {
		return nil, err
	}
	spec, err := proto.Marshal(&wardv1.BaselineSpec{BaselineId: b.ID, Version: b.Version,
		Document: doc, Tenant: tenant, PublishedAt: timestamppb.New(m.clock())})
	if err != nil {
		return nil, fmt.Errorf("baselines: marshal: %w", err)
	}
	sp, err := m.cfg.Signer.Sign(PayloadType, spec)
	if err != nil {
		return nil, fmt.Errorf("baselines: sign: %w", err)
	}
	return &wardv1.ConnectResponse{Body: &wardv1.ConnectResponse_BaselineUpdate{
		BaselineUpdate: sp}}, nil
}

// Reported records the version an agent reports (in a drift report) and, when it is not
// the tenant's current one, sends the current baseline to the agent.
func (m *Manager) Reported(ctx context.Context, tenant, agentID, version string) error {
	prev, err := m.cfg.Store.AgentBaseline(ctx, tenant, agentID)
	if err != nil {
		return fmt.Errorf("baselines: %w", err)
	}
	if prev != version {
		// Recorded first: an agent's version is stored only with its record, so a
		// refused record is made again at the agent's next report.
		err := m.record(ctx, remediation.Decision{Tenant: tenant, Agent: agentID,
			Action: "baseline_applied", Actor: agentID, Detail: version})
		if err != nil {
			return err
		}
		err = m.cfg.Store.SetAgentBaseline(ctx, tenant, agentID, version, m.clock())
		if err != nil {
			return fmt.Errorf("baselines: %w", err)
		}
	}
	return m.Offer(ctx, tenant, agentID, version)
}

// Offer sends the tenant's current baseline to the agent unless it already applies
// version equal to the current one.
func (m *Manager) Offer(ctx context.Context, tenant, agentID, version string) error {
	b, _, err := m.Current(ctx, tenant)
	if err != nil {
		return err
	}
	if version == b.Version {
		return nil
	}
	msg, err := m.update(ctx, tenant)
	if err != nil {
		return err
	}
	if err := m.cfg.Sender.Send(agentID, msg); err != nil {
		m.log.Info("baseline not sent", logkey.Agent, agentID, logkey.Error, err)
	}
	return nil
}

// record writes d through the Recorder; an error wraps remediation.ErrEvidence, and the
// caller then leaves undone what d records.
func (m *Manager) record(ctx context.Context, d remediation.Decision) error {
	if d.At.IsZero() {
		d.At = m.clock()
	}
	if m.cfg.Recorder == nil {
		return nil
	}
	if err := m.cfg.Recorder.Record(ctx, d); err != nil {
		m.log.Error("baseline decision not recorded; not done", "action", d.Action,
			logkey.Error, err)
		return fmt.Errorf("baselines: %w: %s: %w", remediation.ErrEvidence, d.Action, err)
	}
	return nil
}
