package remediation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// incidentKey is the log key of an incident id.
const incidentKey = "incident"

// HandleDrift processes a committed drift report of agent in tenant: it records each
// check's state, opens or updates an incident for each failing check and resolves the
// incident of each passing one. A report that answers a command (command_id set) is its
// verification: a check of it that still fails escalates the incident. HandleDrift
// returns the first store error; results before it are processed.
func (e *Engine) HandleDrift(ctx context.Context, tenant, agentID string,
	r *wardv1.DriftReport) error {
	for _, res := range r.GetResults() {
		if err := e.handleResult(ctx, tenant, agentID, r.GetCommandId(), res); err != nil {
			return fmt.Errorf("remediation: check %s: %w", res.GetCheckId(), err)
		}
	}
	return nil
}

// handleResult processes one check result.
func (e *Engine) handleResult(ctx context.Context, tenant, agentID, commandID string,
	res *wardv1.CheckResult) error {
	now := e.clock()
	check := res.GetCheckId()
	if store.ControllerCheck(check) {
		e.log.Warn("drift result for a check of the controller's own ignored",
			logkey.Agent, agentID, logkey.Check, check)
		return nil
	}
	state := stateName(res.GetState())
	cs, err := e.st.UpdateCheckStatus(ctx, tenant, agentID, check,
		func(cs *store.CheckStatus) error {
			if state == "fail" && cs.State != "fail" {
				cs.Failures = append(trimBefore(cs.Failures, now.Add(-e.cfg.FlapWindow)), now)
			}
			cs.State, cs.Observed, cs.Message = state, res.GetObserved(), res.GetMessage()
			cs.Since = res.GetSince().AsTime()
			cs.UpdatedAt = now
			return nil
		})
	if err != nil {
		return err
	}

	switch res.GetState() {
	case wardv1.CheckState_CHECK_STATE_FAIL:
		if e.cfg.Catalog.Excluded(ctx, tenant, check) {
			return nil
		}
		return e.checkFails(ctx, cs, commandID)
	case wardv1.CheckState_CHECK_STATE_PASS, wardv1.CheckState_CHECK_STATE_NOT_APPLICABLE:
		return e.checkPasses(ctx, cs, commandID)
	}
	return nil // an erroring check changes no incident
}

// checkFails opens the check's incident or, when one is open, notes the new observation;
// a failing verification escalates.
func (e *Engine) checkFails(ctx context.Context, cs store.CheckStatus, commandID string) error {
	now := e.clock()
	inc := store.Incident{
		ID: newID("inc-"), Tenant: cs.Tenant, Agent: cs.Agent, Check: cs.Check,
		Kind: store.IncidentKindDrift, State: store.IncidentOpen,
		Severity: e.cfg.Catalog.Severity(ctx, cs.Tenant, cs.Check),
		Observed: cs.Observed, OpenedAt: now, UpdatedAt: now,
		History: []store.IncidentEvent{{At: now, State: store.IncidentOpen,
			Actor: ControllerActor, Action: "opened", Detail: cs.Observed}},
	}
	got, created, err := e.st.OpenIncident(ctx, inc)
	if err != nil {
		return err
	}
	if created {
		e.log.Info("incident opened", incidentKey, got.ID, logkey.Agent, got.Agent,
			logkey.Tenant, got.Tenant, logkey.Check, got.Check)
		err := e.record(ctx, decisionOf(got, "incident_opened", ControllerActor, cs.Observed))
		if err != nil {
			e.undecided(ctx, got.ID)
			return err
		}
		return e.decide(ctx, got, len(trimBefore(cs.Failures, now.Add(-e.cfg.FlapWindow))))
	}

	if commandID != "" && lastCommand(got) == commandID &&
		got.State == store.IncidentRemediating {
		return e.escalate(ctx, got, ControllerActor,
			"verification failed after command "+commandID)
	}
	if got.Observed != cs.Observed {
		_, err = e.st.UpdateIncident(ctx, got.ID, func(i *store.Incident) error {
			i.Observed = cs.Observed
			i.UpdatedAt = now
			return nil
		})
	}
	return err
}

// checkPasses resolves the check's unresolved incident, if any.
func (e *Engine) checkPasses(ctx context.Context, cs store.CheckStatus, commandID string) error {
	inc, err := e.st.UnresolvedIncident(ctx, cs.Tenant, cs.Agent, cs.Check)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}

	reason := "check passes"
	if commandID != "" && lastCommand(inc) == commandID {
		reason = "verified after command " + commandID
		err := e.record(ctx, Decision{Tenant: inc.Tenant, Agent: inc.Agent,
			Incident: inc.ID, Check: inc.Check, Command: commandID, Runbook: inc.Runbook,
			Action: "verified", Detail: "check passes"})
		if err != nil {
			return err
		}
	}
	return e.resolve(ctx, inc, ControllerActor, reason)
}

// undecided notes on an incident whose opening could not be recorded that no decision
// was taken; an operator may still approve, escalate or resolve it. Failures are logged.
func (e *Engine) undecided(ctx context.Context, id string) {
	_, err := e.st.UpdateIncident(ctx, id, func(i *store.Incident) error {
		i.Reason = "no decision taken: the evidence log refused the incident's record"
		return nil
	})
	if err != nil {
		e.log.Warn("note undecided incident", incidentKey, id, logkey.Error, err)
	}
}

// resolve records the resolution of inc (as the caller read it) and moves it to
// resolved. Resolving a resolved incident does nothing; when the record fails the
// incident stays as it is.
func (e *Engine) resolve(ctx context.Context, inc store.Incident, actor,
	reason string) error {
	if inc.State == store.IncidentResolved {
		return nil
	}
	if err := e.record(ctx, decisionOf(inc, "resolved", actor, reason)); err != nil {
		return err
	}

	id := inc.ID
	now := e.clock()
	was := store.IncidentState("")
	inc, err := e.st.UpdateIncident(ctx, id, func(i *store.Incident) error {
		was = i.State
		if i.State == store.IncidentResolved {
			return nil
		}
		i.State, i.Reason, i.ResolvedAt, i.UpdatedAt = store.IncidentResolved, reason, now, now
		i.History = append(i.History, store.IncidentEvent{At: now,
			State: store.IncidentResolved, Actor: actor, Action: "resolved", Detail: reason})
		return nil
	})
	if err != nil || was == store.IncidentResolved {
		return err
	}
	e.log.Info("incident resolved", incidentKey, id, logkey.Agent, inc.Agent,
		logkey.Check, inc.Check, logkey.Reason, reason)
	if was == store.IncidentRemediating {
		e.releaseSlot(inc.Tenant)
		e.fillSlots(ctx, inc.Tenant)
	}
	return nil
}

// stateName is the store's name of a check state.
func stateName(s wardv1.CheckState) string {
	switch s {
	case wardv1.CheckState_CHECK_STATE_PASS:
		return "pass"
	case wardv1.CheckState_CHECK_STATE_FAIL:
		return "fail"
	case wardv1.CheckState_CHECK_STATE_ERROR:
		return "error"
	case wardv1.CheckState_CHECK_STATE_NOT_APPLICABLE:
		return "not_applicable"
	}
	return "unknown"
}

// trimBefore drops the times before cutoff from ts (sorted, oldest first).
func trimBefore(ts []time.Time, cutoff time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(cutoff) {
		i++
	}
	return append([]time.Time(nil), ts[i:]...)
}

// lastCommand returns the incident's newest command id, "" when none.
func lastCommand(inc store.Incident) string {
	if len(inc.Commands) == 0 {
		return ""
	}
	return inc.Commands[len(inc.Commands)-1]
}

func decisionOf(inc store.Incident, action, actor, detail string) Decision {
	return Decision{Tenant: inc.Tenant, Agent: inc.Agent, Incident: inc.ID, Check: inc.Check,
		Command: lastCommand(inc), Runbook: inc.Runbook, Action: action, Actor: actor,
		Detail: detail}
}
