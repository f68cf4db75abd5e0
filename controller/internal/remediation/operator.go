package remediation

import (
	"context"
	"errors"
	"fmt"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/logkey"
)

// Approve lets an incident that awaits approval (or is open or escalated with a runbook
// chosen) be remediated, by actor (an operator name, recorded). The remediation starts
// when the tenant has a free slot. Role and tenant checks are the caller's. ErrState when
// the incident is resolved or already remediating; ErrNoRunbook when it has no runbook.
func (e *Engine) Approve(ctx context.Context, id, actor string) (store.Incident, error) {
	inc, err := e.st.GetIncident(ctx, id)
	if err != nil {
		return store.Incident{}, fmt.Errorf("remediation: approve: %w", err)
	}
	switch inc.State {
	case store.IncidentResolved, store.IncidentRemediating:
		return inc, fmt.Errorf("remediation: approve %s incident: %w", inc.State, ErrState)
	}
	rbID := inc.Runbook
	if rbID == "" {
		rb, ok, err := e.cfg.Catalog.RunbookFor(ctx, inc.Tenant, inc.Check)
		if err != nil {
			return inc, fmt.Errorf("remediation: approve: %w", err)
		}
		if ok {
			rbID = rb.ID
		}
	}
	rb, ok := e.cfg.Catalog.Runbook(rbID)
	if !ok {
		return inc, fmt.Errorf("remediation: approve: %w", ErrNoRunbook)
	}

	now := e.clock()
	_, err = e.st.UpdateIncident(ctx, id, func(i *store.Incident) error {
		i.State, i.Runbook, i.ApprovedBy, i.UpdatedAt = store.IncidentOpen, rb.ID, actor, now
		return nil
	})
	if err != nil {
		return inc, fmt.Errorf("remediation: approve: %w", err)
	}
	if err := e.tryRemediate(ctx, inc, rb, actor, "approved"); err != nil {
		return inc, fmt.Errorf("remediation: approve: %w", err)
	}
	return e.st.GetIncident(ctx, id)
}

// Escalate escalates an unresolved incident by actor's decision, with reason.
func (e *Engine) Escalate(ctx context.Context, id, actor, reason string) (store.Incident,
	error) {
	if reason == "" {
		reason = "escalated by " + actor
	}
	inc, err := e.st.GetIncident(ctx, id)
	if err != nil {
		return store.Incident{}, fmt.Errorf("remediation: escalate: %w", err)
	}
	if err := e.escalate(ctx, inc, actor, reason); err != nil {
		return store.Incident{}, fmt.Errorf("remediation: escalate: %w", err)
	}
	return e.st.GetIncident(ctx, id)
}

// Resolve resolves an incident by actor's decision, with reason (for example a fix made
// by hand). The next failing report of the check opens a new incident.
func (e *Engine) Resolve(ctx context.Context, id, actor, reason string) (store.Incident,
	error) {
	if reason == "" {
		reason = "resolved by " + actor
	}
	inc, err := e.st.GetIncident(ctx, id)
	if err != nil {
		return store.Incident{}, fmt.Errorf("remediation: resolve: %w", err)
	}
	if err := e.resolve(ctx, inc, actor, reason); err != nil {
		return store.Incident{}, fmt.Errorf("remediation: resolve: %w", err)
	}
	return e.st.GetIncident(ctx, id)
}

// RunParams describes a manual runbook run.
type RunParams struct {
	Agent   string // required
	Runbook string // required
	Actor   string // operator name; required
	DryRun  bool
}

// RunRunbook issues a runbook on an agent by an operator's decision. When the agent has an
// unresolved incident for one of the runbook's checks, the run counts as approving it and
// goes through the same policy (slots) as Approve. Otherwise it is a standalone command,
// signed and stored like any other. A dry run never touches an incident.
func (e *Engine) RunRunbook(ctx context.Context, p RunParams) (store.Command, error) {
	rb, ok := e.cfg.Catalog.Runbook(p.Runbook)
	if !ok {
		return store.Command{}, fmt.Errorf("remediation: run %s: %w", p.Runbook, ErrNoRunbook)
	}
	agent, err := e.st.GetAgent(ctx, p.Agent)
	if err != nil {
		return store.Command{}, fmt.Errorf("remediation: run: %w", err)
	}

	if !p.DryRun {
		for _, check := range rb.Checks {
			inc, err := e.st.UnresolvedIncident(ctx, agent.Tenant, agent.ID, check)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return store.Command{}, fmt.Errorf("remediation: run: %w", err)
			}
			if inc.State == store.IncidentRemediating {
				return store.Command{}, fmt.Errorf("remediation: run: incident %s: %w",
					inc.ID, ErrState)
			}
			return e.runForIncident(ctx, inc, rb, p.Actor)
		}
	}

	c, _, err := e.issue(ctx, issueParams{agent: agent.ID, tenant: agent.Tenant, rb: rb,
		actor: p.Actor, dryRun: p.DryRun}, nil)
	if err != nil {
		return store.Command{}, fmt.Errorf("remediation: run: %w", err)
	}
	e.log.Info("manual run", logkey.Agent, agent.ID, logkey.Runbook, rb.ID,
		logkey.Command, c.ID, "actor", p.Actor, "dry_run", p.DryRun)
	e.sendNew(ctx, c)
	return e.st.GetCommand(ctx, c.ID)
}

// runForIncident approves inc with rb by actor and returns the command issued, if a slot
// was free.
func (e *Engine) runForIncident(ctx context.Context, inc store.Incident, rb Runbook,
	actor string) (store.Command, error) {
	now := e.clock()
	_, err := e.st.UpdateIncident(ctx, inc.ID, func(i *store.Incident) error {
		i.State, i.Runbook, i.ApprovedBy, i.UpdatedAt = store.IncidentOpen, rb.ID, actor, now
		return nil
	})
	if err != nil {
		return store.Command{}, fmt.Errorf("remediation: run: %w", err)
	}
	if err := e.tryRemediate(ctx, inc, rb, actor, "approved"); err != nil {
		return store.Command{}, fmt.Errorf("remediation: run: %w", err)
	}
	inc, err = e.st.GetIncident(ctx, inc.ID)
	if err != nil {
		return store.Command{}, fmt.Errorf("remediation: run: %w", err)
	}
	if inc.State != store.IncidentRemediating {
		return store.Command{}, fmt.Errorf("remediation: run: %s", inc.Reason)
	}
	return e.st.GetCommand(ctx, lastCommand(inc))
}
