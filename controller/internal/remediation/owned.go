package remediation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// OwnedCommand is a command another part of the controller issues through the engine, for
// its own purpose (an agent installation, for example). It takes the same path as a
// runbook's command: signed with the policy key, stored before it is sent, sent again
// after reconnects, expired when overdue; its outcome goes to the owner's ResultHandler
// instead of an incident.
type OwnedCommand struct {
	Tenant string // required
	Agent  string // required: the agent that runs it
	// Owner names the ResultHandler that gets the outcome; required.
	Owner string
	// Subject is what the command is about, kept with it for the owner.
	Subject string
	// Name is the command's runbook id as the agent and the operators see it; required.
	Name  string
	Actor string // operator name or ControllerActor; empty means ControllerActor
	Steps []Step // required
	// TTL is how long the command may wait for a result; zero means Config.CommandTTL.
	TTL time.Duration
}

// ResultHandler gets the outcome of the commands of one owner. CommandFinished is called
// once per command, after its final status is stored: with the agent's result, or with a
// nil result when the command expired without one. It must be safe for concurrent use;
// its error is returned to whoever delivered the outcome (and logged there).
type ResultHandler interface {
	CommandFinished(ctx context.Context, c store.Command, r *wardv1.CommandResult) error
}

// SetResultHandler makes h get the outcomes of owner's commands. Call it before the
// engine runs; a later call for the same owner replaces h.
func (e *Engine) SetResultHandler(owner string, h ResultHandler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.owners == nil {
		e.owners = map[string]ResultHandler{}
	}
	e.owners[owner] = h
}

// resultHandler returns owner's handler, nil when there is none.
func (e *Engine) resultHandler(owner string) ResultHandler {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.owners[owner]
}

// IssueOwned signs c, records its issue, stores it, then sends it when the agent is
// connected (otherwise it is sent when the agent connects). When the record fails nothing
// is stored or sent (an error wrapping ErrEvidence). The returned command is as stored.
func (e *Engine) IssueOwned(ctx context.Context, c OwnedCommand) (store.Command, error) {
	switch {
	case c.Tenant == "" || c.Agent == "":
		return store.Command{}, errors.New("remediation: owned command: no tenant or agent")
	case c.Owner == "" || c.Name == "":
		return store.Command{}, errors.New("remediation: owned command: no owner or name")
	case len(c.Steps) == 0:
		return store.Command{}, errors.New("remediation: owned command: no steps")
	}
	if c.Actor == "" {
		c.Actor = ControllerActor
	}
	ttl := c.TTL
	if ttl <= 0 {
		ttl = e.cfg.CommandTTL
	}

	now := e.clock()
	cmd := store.Command{ID: newID("cmd-"), Tenant: c.Tenant, Agent: c.Agent,
		Runbook: c.Name, IssuedBy: c.Actor, IssuedAt: now, ExpiresAt: now.Add(ttl),
		Status: store.CommandPending, Owner: c.Owner, Subject: c.Subject}
	signed, err := e.sign(cmd, Runbook{ID: c.Name, Steps: c.Steps})
	if err != nil {
		return store.Command{}, fmt.Errorf("remediation: owned command: %w", err)
	}
	cmd.Signed = signed
	err = e.record(ctx, Decision{Tenant: c.Tenant, Agent: c.Agent, Command: cmd.ID,
		Runbook: c.Name, Action: "command_issued", Actor: c.Actor,
		Detail: fmt.Sprintf("for %s %s, expires %s", c.Owner, c.Subject,
			cmd.ExpiresAt.UTC().Format(time.RFC3339))})
	if err != nil {
		return store.Command{}, fmt.Errorf("remediation: owned command: %w", err)
	}
	if err := e.st.CreateCommand(ctx, cmd); err != nil {
		return store.Command{}, fmt.Errorf("remediation: store command: %w", err)
	}
	e.send(ctx, cmd)
	return cmd, nil
}

// ownedFinished hands a finished owned command to its owner's handler.
func (e *Engine) ownedFinished(ctx context.Context, c store.Command) error {
	h := e.resultHandler(c.Owner)
	if h == nil {
		e.log.Warn("no handler for the command's owner", logkey.Command, c.ID,
			"owner", c.Owner)
		return nil
	}
	var r *wardv1.CommandResult
	if c.Result != nil {
		r = &wardv1.CommandResult{}
		if err := proto.Unmarshal(c.Result, r); err != nil {
			return fmt.Errorf("remediation: decode result of %s: %w", c.ID, err)
		}
	}
	if err := h.CommandFinished(ctx, c, r); err != nil {
		return fmt.Errorf("remediation: %s result of %s: %w", c.Owner, c.ID, err)
	}
	return nil
}
