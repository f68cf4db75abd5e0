package remediation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// issueParams describes a command to issue.
type issueParams struct {
	inc    store.Incident // zero for a manual run without incident
	agent  string         // target when inc is zero
	tenant string         // tenant of agent when inc is zero
	rb     Runbook
	actor  string
	dryRun bool
	// decision, when its Action is set, is recorded (with the command's id) before the
	// command's own record: the approval or automatic remediation the command carries out.
	decision Decision
}

// issue builds the command for p, signs it with the policy key, records the decision to
// issue it and stores it as sent once (the caller hands it over with sendNew right after,
// which puts it back to pending if the agent's stream does not take it: one write per
// command in the common case); for an incident, onIncident is applied to it in the same
// transaction. Nothing is stored when the record fails (an error wrapping ErrEvidence).
func (e *Engine) issue(ctx context.Context, p issueParams,
	onIncident func(c store.Command) func(*store.Incident) error) (store.Command,
	store.Incident, error) {
	agent, tenant := p.agent, p.tenant
	if p.inc.ID != "" {
		agent, tenant = p.inc.Agent, p.inc.Tenant
	}
	now := e.clock()
	c := store.Command{
		ID: newID("cmd-"), Tenant: tenant, Agent: agent, Incident: p.inc.ID,
		Runbook: p.rb.ID, IssuedBy: p.actor, IssuedAt: now,
		ExpiresAt: now.Add(e.cfg.CommandTTL), DryRun: p.dryRun, Status: store.CommandSent,
		Sends: 1, LastSentAt: now,
	}
	signed, err := e.sign(c, p.rb)
	if err != nil {
		return store.Command{}, store.Incident{}, err
	}
	c.Signed = signed

	if d := p.decision; d.Action != "" {
		d.Command = c.ID
		if err := e.record(ctx, d); err != nil {
			return store.Command{}, store.Incident{}, err
		}
	}
	err = e.record(ctx, Decision{Tenant: tenant, Agent: agent, Incident: p.inc.ID,
		Check: p.inc.Check, Command: c.ID, Runbook: p.rb.ID, Action: "command_issued",
		Actor: p.actor, Detail: fmt.Sprintf("expires %s, dry run %v",
			c.ExpiresAt.UTC().Format(time.RFC3339), c.DryRun)})
	if err != nil {
		return store.Command{}, store.Incident{}, err
	}

	var inc store.Incident
	if p.inc.ID != "" && onIncident != nil {
		inc, err = e.st.IssueCommand(ctx, c, onIncident(c))
	} else {
		err = e.st.CreateCommand(ctx, c)
	}
	if err != nil {
		return store.Command{}, store.Incident{}, fmt.Errorf("store command: %w", err)
	}
	return c, inc, nil
}

// sign returns the serialized SignedPayload of c's CommandSpec.
func (e *Engine) sign(c store.Command, rb Runbook) ([]byte, error) {
	spec := &wardv1.CommandSpec{
		CommandId: c.ID, AgentId: c.Agent, Tenant: c.Tenant,
		IssuedAt: timestamppb.New(c.IssuedAt), ExpiresAt: timestamppb.New(c.ExpiresAt),
		RunbookId: rb.ID, DryRun: c.DryRun, VerifyChecks: rb.Verify,
	}
	if len(spec.VerifyChecks) == 0 {
		spec.VerifyChecks = rb.Checks
	}
	for _, s := range rb.Steps {
		timeout := s.Timeout
		if timeout <= 0 {
			timeout = DefaultStepTimeout
		}
		spec.Steps = append(spec.Steps, &wardv1.CommandStep{Action: s.Action,
			Params: s.Params, Timeout: durationpb.New(timeout)})
	}
	payload, err := proto.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("marshal command: %w", err)
	}
	sp, err := e.cfg.Signer.Sign(CommandPayloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("sign command: %w", err)
	}
	out, err := proto.Marshal(sp)
	if err != nil {
		return nil, fmt.Errorf("marshal signed command: %w", err)
	}
	return out, nil
}

// errUndecodable is deliver's error for a stored command it cannot decode.
var errUndecodable = errors.New("stored command cannot be decoded")

// deliver hands a stored command to the agent's stream and logs what went wrong:
// ErrNotConnected when the agent has no stream here, errUndecodable, or the send's error.
func (e *Engine) deliver(c store.Command) error {
	var sp wardv1.SignedPayload
	if err := proto.Unmarshal(c.Signed, &sp); err != nil {
		e.log.Error("decode stored command", logkey.Command, c.ID, logkey.Error, err)
		return errUndecodable
	}
	err := e.cfg.Sender.Send(c.Agent, &wardv1.ConnectResponse{
		Body: &wardv1.ConnectResponse_Command{Command: &sp}})
	if errors.Is(err, ErrNotConnected) {
		e.log.Info("command waits for the agent", logkey.Command, c.ID,
			logkey.Agent, c.Agent)
	} else if err != nil {
		e.log.Warn("send command", logkey.Command, c.ID, logkey.Agent, c.Agent,
			logkey.Error, err)
	}
	return err
}

// sendNew hands a command issue stored as sent to the agent's stream. When the stream
// does not take it (the agent is not connected here), the command goes back to pending,
// unless a result came meanwhile; it is sent when the agent connects.
func (e *Engine) sendNew(ctx context.Context, c store.Command) {
	err := e.deliver(c)
	if err == nil {
		e.log.Info("command sent", logkey.Command, c.ID, logkey.Agent, c.Agent,
			logkey.Runbook, c.Runbook, logkey.Attempt, 1)
		return
	}
	if errors.Is(err, errUndecodable) {
		return
	}
	_, err = e.st.UpdateCommand(ctx, c.ID, func(c *store.Command) error {
		if c.Status == store.CommandSent && c.Sends == 1 {
			c.Status, c.Sends, c.LastSentAt = store.CommandPending, 0, time.Time{}
		}
		return nil
	})
	if err != nil {
		e.log.Warn("mark command pending", logkey.Command, c.ID, logkey.Error, err)
	}
}

// send hands a stored command to the agent's stream and marks it sent. An agent without
// a stream gets it when it connects; failures are logged.
func (e *Engine) send(ctx context.Context, c store.Command) {
	if err := e.deliver(c); err != nil {
		return
	}

	now := e.clock()
	_, err := e.st.UpdateCommand(ctx, c.ID, func(c *store.Command) error {
		if c.Status == store.CommandPending {
			c.Status = store.CommandSent
		}
		c.Sends++
		c.LastSentAt = now
		return nil
	})
	if err != nil {
		e.log.Warn("mark command sent", logkey.Command, c.ID, logkey.Error, err)
		return
	}
	e.log.Info("command sent", logkey.Command, c.ID, logkey.Agent, c.Agent,
		logkey.Runbook, c.Runbook, logkey.Attempt, c.Sends+1)
}

// AgentConnected is called once an agent's stream is open, with the session's roles
// (agentapi.Observer): it resolves the agent's offline incident, expires its overdue
// commands and (re)sends the others, oldest first; those of Config.CollectorOwners only
// when roles include the collector role. A command that was already sent is sent again:
// the agent runs each id at most once, and the first result the controller stores wins.
func (e *Engine) AgentConnected(ctx context.Context, tenant, agentID string,
	roles []string) error {
	inc, err := e.st.UnresolvedIncident(ctx, tenant, agentID, store.OfflineCheck)
	if err == nil {
		if err := e.resolve(ctx, inc, ControllerActor, "agent connected"); err != nil {
			return fmt.Errorf("remediation: %w", err)
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("remediation: %w", err)
	}
	collector := slices.Contains(roles, store.AgentRoleCollector)
	return e.resendCommands(ctx, tenant, agentID, collector)
}

// resendCommands expires the agent's overdue unfinished commands and sends the rest, but
// those of Config.CollectorOwners only to a collector.
func (e *Engine) resendCommands(ctx context.Context, tenant, agentID string,
	collector bool) error {
	cmds, err := e.st.UnfinishedCommands(ctx, tenant, agentID)
	if err != nil {
		return fmt.Errorf("remediation: %w", err)
	}
	now := e.clock()
	for _, c := range cmds {
		if !now.Before(c.ExpiresAt) {
			if err := e.expire(ctx, c); err != nil {
				return err
			}
			continue
		}
		if !collector && slices.Contains(e.cfg.CollectorOwners, c.Owner) {
			e.log.Warn("command kept for a collector session", logkey.Agent, agentID,
				logkey.Command, c.ID, "owner", c.Owner)
			continue
		}
		e.send(ctx, c)
	}
	return nil
}

// expire marks an unfinished command expired and escalates its incident.
func (e *Engine) expire(ctx context.Context, c store.Command) error {
	return e.finish(ctx, c, store.CommandExpired, nil, "command expired before a result")
}

// HandleResult processes a committed command result from agent in tenant. The first
// result of a command wins; later ones (a replay refusal after a resend) are ignored. A
// result for a command of another agent is refused with an error.
func (e *Engine) HandleResult(ctx context.Context, tenant, agentID string,
	r *wardv1.CommandResult) error {
	c, err := e.st.GetCommand(ctx, r.GetCommandId())
	if err != nil {
		return fmt.Errorf("remediation: result: %w", err)
	}
	if c.Agent != agentID || c.Tenant != tenant {
		return fmt.Errorf("remediation: result for command %s of agent %s", c.ID, c.Agent)
	}
	body, err := proto.Marshal(r)
	if err != nil {
		return fmt.Errorf("remediation: result: %w", err)
	}
	why := r.GetRefusalReason()
	if why == "" {
		why = "command " + statusName(r.GetStatus())
	}
	return e.finish(ctx, c, statusOf(r.GetStatus()), body, why)
}

// finish records and stores a command's final status and result, once, and updates its
// incident: a command that did not succeed escalates it (a failed remediation is an
// incident of its own kind); a successful one waits for the verification drift report.
// c is the command as the caller read it; when the record fails nothing is stored.
func (e *Engine) finish(ctx context.Context, c store.Command, st store.CommandStatus,
	result []byte, why string) error {
	id := c.ID
	if c.Status.Finished() {
		e.log.Info("later result ignored", logkey.Command, id, "status", st)
		return nil
	}
	err := e.record(ctx, Decision{Tenant: c.Tenant, Agent: c.Agent, Incident: c.Incident,
		Command: c.ID, Runbook: c.Runbook, Action: "command_result", Detail: string(st)})
	if err != nil {
		return fmt.Errorf("remediation: result of %s: %w", id, err)
	}

	now := e.clock()
	already := false
	c, err = e.st.UpdateCommand(ctx, id, func(c *store.Command) error {
		already = c.Status.Finished()
		if already {
			return nil
		}
		c.Status, c.Result, c.FinishedAt = st, result, now
		return nil
	})
	if err != nil {
		return fmt.Errorf("remediation: finish command: %w", err)
	}
	if already {
		e.log.Info("later result ignored", logkey.Command, id, "status", st)
		return nil
	}

	e.log.Info("command finished", logkey.Command, id, logkey.Agent, c.Agent, "status", st)
	if c.Owner != "" {
		return e.ownedFinished(ctx, c)
	}
	if c.Incident == "" || st == store.CommandSucceeded || st == store.CommandDryRun {
		return nil
	}
	inc, err := e.st.GetIncident(ctx, c.Incident)
	if err != nil {
		return fmt.Errorf("remediation: %w", err)
	}
	if inc.State != store.IncidentRemediating || lastCommand(inc) != c.ID {
		return nil
	}
	return e.escalate(ctx, inc, ControllerActor, "remediation failed: "+why)
}

// statusOf maps a reported command status to the stored one.
func statusOf(s wardv1.CommandStatus) store.CommandStatus {
	switch s {
	case wardv1.CommandStatus_COMMAND_STATUS_SUCCEEDED:
		return store.CommandSucceeded
	case wardv1.CommandStatus_COMMAND_STATUS_REFUSED:
		return store.CommandRefused
	case wardv1.CommandStatus_COMMAND_STATUS_DRY_RUN:
		return store.CommandDryRun
	case wardv1.CommandStatus_COMMAND_STATUS_TIMED_OUT:
		return store.CommandTimedOut
	}
	return store.CommandFailed
}

func statusName(s wardv1.CommandStatus) string { return string(statusOf(s)) }

// Sweep expires overdue commands, gives free remediation slots to waiting incidents and
// opens incidents for agents offline longer than OfflineAfter. It is what Run does on
// each tick; tests call it directly.
func (e *Engine) Sweep(ctx context.Context) error {
	agents, err := e.st.ListAgents(ctx, "")
	if err != nil {
		return fmt.Errorf("remediation: sweep: %w", err)
	}
	now := e.clock()
	tenants := map[string]bool{}
	for _, a := range agents {
		tenants[a.Tenant] = true
		if a.Revoked {
			continue
		}
		if err := e.expireOverdue(ctx, a, now); err != nil {
			return err
		}
		if !a.Online && !a.LastSeen.IsZero() && now.Sub(a.LastSeen) > e.cfg.OfflineAfter {
			if err := e.agentOffline(ctx, a); err != nil {
				return err
			}
		}
	}
	for t := range tenants {
		e.fillSlotsNow(ctx, t)
	}
	return nil
}

// expireOverdue expires the agent's unfinished commands past their expiry.
func (e *Engine) expireOverdue(ctx context.Context, a store.Agent, now time.Time) error {
	cmds, err := e.st.UnfinishedCommands(ctx, a.Tenant, a.ID)
	if err != nil {
		return fmt.Errorf("remediation: sweep: %w", err)
	}
	for _, c := range cmds {
		if !now.Before(c.ExpiresAt) {
			if err := e.expire(ctx, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// agentOffline opens the agent's offline incident (once) and escalates it: no runbook
// can reach an agent that is not there. An offline incident still open (its escalation
// could not be recorded before) is escalated again.
func (e *Engine) agentOffline(ctx context.Context, a store.Agent) error {
	now := e.clock()
	detail := "last seen " + a.LastSeen.UTC().Format(time.RFC3339)
	inc, created, err := e.st.OpenIncident(ctx, store.Incident{
		ID: newID("inc-"), Tenant: a.Tenant, Agent: a.ID, Check: store.OfflineCheck,
		Kind: store.IncidentKindOffline, State: store.IncidentOpen, Severity: "high",
		Observed: detail, OpenedAt: now, UpdatedAt: now,
		History: []store.IncidentEvent{{At: now, State: store.IncidentOpen,
			Actor: ControllerActor, Action: "opened", Detail: detail}},
	})
	if err != nil {
		return err
	}
	if !created {
		if inc.State != store.IncidentOpen {
			return nil
		}
		return e.escalate(ctx, inc, ControllerActor, "agent offline, "+detail)
	}
	e.log.Warn("incident opened", incidentKey, inc.ID, logkey.Agent, a.ID,
		logkey.Check, store.OfflineCheck)
	if err := e.record(ctx, decisionOf(inc, "incident_opened", ControllerActor,
		detail)); err != nil {
		return err
	}
	return e.escalate(ctx, inc, ControllerActor, "agent offline, "+detail)
}
