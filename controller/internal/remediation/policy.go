package remediation

import (
	"context"
	"errors"
	"fmt"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/logkey"
)

// decide applies the policy to a newly opened incident whose check has failed failures
// times within the flap window.
func (e *Engine) decide(ctx context.Context, inc store.Incident, failures int) error {
	if failures > e.cfg.FlapLimit {
		return e.escalate(ctx, inc, ControllerActor,
			fmt.Sprintf("flapping: failed %d times within %s", failures, e.cfg.FlapWindow))
	}

	rb, ok, err := e.cfg.Catalog.RunbookFor(ctx, inc.Tenant, inc.Check)
	if err != nil {
		return err
	}
	if !ok {
		return e.escalate(ctx, inc, ControllerActor, "no runbook remediates this check")
	}
	agent, err := e.st.GetAgent(ctx, inc.Agent)
	if err != nil {
		return err
	}

	if why := approvalNeeded(agent, rb); why != "" {
		return e.awaitApproval(ctx, inc.ID, rb.ID, why)
	}
	return e.tryRemediate(ctx, inc, rb, ControllerActor, "auto_remediated")
}

// approvalNeeded says why an incident on agent must wait for an operator before rb runs,
// "" when it need not.
func approvalNeeded(agent store.Agent, rb Runbook) string {
	switch {
	case agent.Tier >= 3:
		return fmt.Sprintf("tier %d agent: approval required", agent.Tier)
	case rb.RequiresApproval:
		return "runbook " + rb.ID + " requires approval"
	}
	return ""
}

// awaitApproval moves an open incident to awaiting_approval.
func (e *Engine) awaitApproval(ctx context.Context, id, runbookID, why string) error {
	now := e.clock()
	inc, err := e.st.UpdateIncident(ctx, id, func(i *store.Incident) error {
		i.State, i.Runbook, i.Reason, i.UpdatedAt =
			store.IncidentAwaitingApproval, runbookID, why, now
		i.History = append(i.History, store.IncidentEvent{At: now,
			State: store.IncidentAwaitingApproval, Actor: ControllerActor,
			Action: "awaiting_approval", Detail: why})
		return nil
	})
	if err != nil {
		return err
	}
	e.log.Info("incident awaits approval", incidentKey, id, logkey.Agent, inc.Agent,
		logkey.Runbook, runbookID, logkey.Reason, why)
	// Waiting changes nothing on the host: the state stays even when its record fails.
	return e.record(ctx, decisionOf(inc, "awaiting_approval", ControllerActor, why))
}

// tryRemediate issues rb for the incident if the tenant has a free remediation slot and
// moves it to remediating; otherwise the incident stays as it is, with the reason noted,
// until fillSlots picks it up. action is the decision recorded ("auto_remediated" or
// "approved").
//
// inc is the incident as the caller read it: its id, tenant, agent and check are used;
// its state is re-checked when the command is stored.
func (e *Engine) tryRemediate(ctx context.Context, inc store.Incident, rb Runbook, actor,
	action string) error {
	id := inc.ID
	ok, n, err := e.takeSlot(ctx, inc.Tenant)
	if err != nil {
		return err
	}
	if !ok {
		_, err := e.st.UpdateIncident(ctx, id, func(i *store.Incident) error {
			i.Runbook = rb.ID
			i.Reason = fmt.Sprintf("waiting for a remediation slot (%d of %d in use)",
				n, e.cfg.MaxConcurrent)
			return nil
		})
		if err != nil {
			return err
		}
		e.log.Info("remediation deferred", incidentKey, id, logkey.Tenant, inc.Tenant,
			logkey.Count, n)
		return nil
	}
	if err := e.remediate(ctx, inc, rb, actor, action); err != nil {
		e.releaseSlot(inc.Tenant)
		if errors.Is(err, ErrEvidence) {
			e.notRemediated(ctx, inc, rb, actor)
		}
		return err
	}
	return nil
}

// notRemediated puts back an incident whose remediation could not be recorded. The
// controller's own decision stays open with its runbook chosen, so that the next sweep
// tries again (as for an incident that waited for a slot); an operator's approval is
// undone (state, runbook and approver as they were before it), and the operator told.
// Failures are logged.
func (e *Engine) notRemediated(ctx context.Context, inc store.Incident, rb Runbook,
	actor string) {
	why := "not remediated: the evidence log refused the decision's record"
	_, err := e.st.UpdateIncident(ctx, inc.ID, func(i *store.Incident) error {
		if i.State != store.IncidentOpen {
			return nil // someone else moved it meanwhile
		}
		if actor == ControllerActor {
			i.Runbook, i.Reason = rb.ID, why+"; tried again at the next sweep"
			return nil
		}
		i.State, i.Runbook, i.ApprovedBy, i.Reason = inc.State, inc.Runbook,
			inc.ApprovedBy, why
		return nil
	})
	if err != nil {
		e.log.Warn("put back incident", incidentKey, inc.ID, logkey.Error, err)
	}
}

// remediate issues rb for inc, which holds a remediation slot, and moves it to
// remediating.
func (e *Engine) remediate(ctx context.Context, inc store.Incident, rb Runbook, actor,
	action string) error {
	id := inc.ID
	now := e.clock()
	decision := decisionOf(inc, action, actor, "runbook "+rb.ID)
	decision.Runbook = rb.ID
	cmd, inc, err := e.issue(ctx, issueParams{inc: inc, rb: rb, actor: actor,
		decision: decision},
		func(cmd store.Command) func(*store.Incident) error {
			return func(i *store.Incident) error {
				if i.State == store.IncidentResolved || i.State == store.IncidentRemediating {
					return ErrState
				}
				i.State, i.Runbook, i.UpdatedAt = store.IncidentRemediating, rb.ID, now
				i.Reason = ""
				i.Attempts++
				i.Commands = append(i.Commands, cmd.ID)
				if action == "approved" {
					i.ApprovedBy = actor
				}
				i.History = append(i.History, store.IncidentEvent{At: now,
					State: store.IncidentRemediating, Actor: actor, Action: action,
					Command: cmd.ID, Detail: "runbook " + rb.ID})
				return nil
			}
		})
	if err != nil {
		return err
	}
	e.log.Info("incident remediating", incidentKey, id, logkey.Agent, inc.Agent,
		logkey.Runbook, rb.ID, logkey.Command, cmd.ID, "actor", actor)
	e.sendNew(ctx, cmd)
	return nil
}

// fillSlots gives free remediation slots of tenant to open incidents that wait for one,
// oldest first, when some were deferred since the last time. Failures are logged.
func (e *Engine) fillSlots(ctx context.Context, tenant string) {
	e.mu.Lock()
	deferred := e.waiting[tenant]
	delete(e.waiting, tenant)
	e.mu.Unlock()
	if deferred {
		e.fillSlotsNow(ctx, tenant)
	}
}

// fillSlotsNow is fillSlots without the check that something was deferred.
func (e *Engine) fillSlotsNow(ctx context.Context, tenant string) {
	waiting, err := e.st.ListIncidents(ctx, tenant,
		store.IncidentFilter{State: store.IncidentOpen})
	if err != nil {
		e.log.Warn("list open incidents", logkey.Tenant, tenant, logkey.Error, err)
		return
	}
	for _, inc := range waiting {
		if inc.Runbook == "" {
			continue // not decided yet, or no runbook
		}
		rb, ok := e.cfg.Catalog.Runbook(inc.Runbook)
		if !ok {
			continue
		}
		if e.slotsFull(tenant) {
			e.mu.Lock()
			e.waiting[tenant] = true // the rest wait for the next free slot
			e.mu.Unlock()
			return
		}
		actor, action := ControllerActor, "auto_remediated"
		if inc.ApprovedBy != "" {
			actor, action = inc.ApprovedBy, "approved"
		}
		if err := e.tryRemediate(ctx, inc, rb, actor, action); err != nil {
			e.log.Warn("remediate waiting incident", incidentKey, inc.ID, logkey.Error, err)
		}
	}
}

// escalate records the escalation of inc (as the caller read it), moves it to escalated
// and hands it to the Escalator. A resolved incident is ErrState; when the record fails
// the incident stays as it is and nothing is handed over.
func (e *Engine) escalate(ctx context.Context, inc store.Incident, actor,
	reason string) error {
	if inc.State == store.IncidentResolved {
		return ErrState
	}
	if err := e.record(ctx, decisionOf(inc, "escalated", actor, reason)); err != nil {
		return err
	}

	id := inc.ID
	now := e.clock()
	was := store.IncidentState("")
	inc, err := e.st.UpdateIncident(ctx, id, func(i *store.Incident) error {
		was = i.State
		if i.State == store.IncidentResolved {
			return ErrState
		}
		i.State, i.Reason, i.UpdatedAt = store.IncidentEscalated, reason, now
		i.History = append(i.History, store.IncidentEvent{At: now,
			State: store.IncidentEscalated, Actor: actor, Action: "escalated",
			Detail: reason})
		return nil
	})
	if err != nil {
		return err
	}
	e.log.Warn("incident escalated", incidentKey, id, logkey.Agent, inc.Agent,
		logkey.Check, inc.Check, logkey.Reason, reason)
	if was == store.IncidentRemediating {
		e.releaseSlot(inc.Tenant)
		e.fillSlots(ctx, inc.Tenant)
	}
	if e.cfg.Escalator != nil {
		if err := e.cfg.Escalator.Escalate(ctx, e.escalation(ctx, inc, reason)); err != nil {
			return fmt.Errorf("escalation of %s not queued: %w", id, err)
		}
	}
	return nil
}

// escalation gathers what the receiver of an escalation needs. Missing pieces (a store
// error) are left out rather than holding the escalation back.
func (e *Engine) escalation(ctx context.Context, inc store.Incident,
	reason string) Escalation {
	esc := Escalation{Incident: inc, Reason: reason}
	if a, err := e.st.GetAgent(ctx, inc.Agent); err == nil {
		esc.Agent = a
	} else {
		esc.Agent = store.Agent{ID: inc.Agent, Tenant: inc.Tenant}
	}
	for _, id := range inc.Commands {
		if c, err := e.st.GetCommand(ctx, id); err == nil {
			esc.Tried = append(esc.Tried, c)
		}
	}
	return esc
}

// slotsFull reports whether tenant's remediation slots are known to be all in use.
func (e *Engine) slotsFull(tenant string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()

	n, ok := e.slots[tenant]
	return ok && n >= e.cfg.MaxConcurrent
}
