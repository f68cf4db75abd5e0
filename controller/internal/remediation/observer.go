package remediation

import (
	"context"
	"errors"
	"fmt"

	"github.com/wardsec/ward/controller/internal/agentapi"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// BaselineTracker learns the baseline version each agent reports (package baselines
// implements it).
type BaselineTracker interface {
	// Reported records version for the agent and offers it the current baseline when
	// they differ.
	Reported(ctx context.Context, tenant, agentID, version string) error
	// Offer sends the current baseline unless version is it.
	Offer(ctx context.Context, tenant, agentID, version string) error
}

// Observer connects the engine (and a BaselineTracker, which may be nil) to the agent
// streams: it implements agentapi.Observer and agentapi.CommandOwners.
type Observer struct {
	Engine    *Engine
	Baselines BaselineTracker
}

var (
	_ agentapi.Observer      = Observer{}
	_ agentapi.CommandOwners = Observer{}
)

// Connected resends the agent's unfinished commands, records the baseline version its
// Hello reports and offers it the current baseline when that differs.
func (o Observer) Connected(ctx context.Context, tenant, agentID string, roles []string,
	hello *wardv1.Hello) {
	if err := o.Engine.AgentConnected(ctx, tenant, agentID, roles); err != nil {
		o.Engine.log.Error("agent connected", logkey.Agent, agentID, logkey.Error, err)
	}
	if o.Baselines == nil {
		return
	}
	var err error
	if v := hello.GetBaselineVersion(); v != "" {
		err = o.Baselines.Reported(ctx, tenant, agentID, v)
	} else {
		err = o.Baselines.Offer(ctx, tenant, agentID, "")
	}
	if err != nil {
		o.Engine.log.Error("offer baseline", logkey.Agent, agentID, logkey.Error, err)
	}
}

// Committed hands drift reports and command results to the engine.
func (o Observer) Committed(ctx context.Context, tenant, agentID string,
	m *wardv1.ConnectRequest) {
	var err error
	switch b := m.GetBody().(type) {
	case *wardv1.ConnectRequest_DriftReport:
		err = o.Engine.HandleDrift(ctx, tenant, agentID, b.DriftReport)
		if v := b.DriftReport.GetBaselineVersion(); o.Baselines != nil && v != "" {
			err = errors.Join(err, o.Baselines.Reported(ctx, tenant, agentID, v))
		}
	case *wardv1.ConnectRequest_CommandResult:
		err = o.Engine.HandleResult(ctx, tenant, agentID, b.CommandResult)
	default:
		return
	}
	if err != nil {
		o.Engine.log.Error("process agent message", logkey.Agent, agentID,
			logkey.Seq, m.GetSeq(), logkey.Error, err)
	}
}

// CommandAgent tells which agent a command was addressed to.
func (o Observer) CommandAgent(ctx context.Context, commandID string) (string, error) {
	c, err := o.Engine.st.GetCommand(ctx, commandID)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("command %s: %w", commandID, agentapi.ErrUnknownCommand)
	}
	if err != nil {
		return "", err
	}
	return c.Agent, nil
}
