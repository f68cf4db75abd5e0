package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/wardsec/ward/controller/internal/agentapi"
	"github.com/wardsec/ward/controller/internal/remediation"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// remediator is what the stream hooks drive; *remediation.Engine implements it.
type remediator interface {
	AgentConnected(ctx context.Context, tenant, agentID string) error
	HandleDrift(ctx context.Context, tenant, agentID string, r *wardv1.DriftReport) error
	HandleResult(ctx context.Context, tenant, agentID string, r *wardv1.CommandResult) error
}

var _ remediator = (*remediation.Engine)(nil)

// streamHooks is the agentapi.Observer of the assembled controller: it hands new sessions,
// committed drift reports and command results to the remediation engine. The messages are
// durably stored before it runs; a failure here is logged, and the engine's periodic sweep
// makes up for what it can.
type streamHooks struct {
	engine remediator
	log    *slog.Logger
}

var _ agentapi.Observer = streamHooks{}

func (h streamHooks) Connected(ctx context.Context, tenant, agentID string, _ *wardv1.Hello) {
	if err := h.engine.AgentConnected(ctx, tenant, agentID); err != nil {
		h.log.Warn("remediation on connect", logkey.Agent, agentID, logkey.Error, err)
	}
}

func (h streamHooks) Committed(ctx context.Context, tenant, agentID string,
	m *wardv1.ConnectRequest) {
	var err error
	switch b := m.GetBody().(type) {
	case *wardv1.ConnectRequest_DriftReport:
		err = h.engine.HandleDrift(ctx, tenant, agentID, b.DriftReport)
	case *wardv1.ConnectRequest_CommandResult:
		err = h.engine.HandleResult(ctx, tenant, agentID, b.CommandResult)
	default:
		return
	}
	if err != nil {
		h.log.Warn("remediation of a message", logkey.Agent, agentID, logkey.Seq, m.GetSeq(),
			logkey.Error, err)
	}
}

// streamSender adapts the agent streams to remediation.Sender (and the baseline
// publisher): an agent without a stream here is remediation.ErrNotConnected.
type streamSender struct{ streams *agentapi.Server }

var _ remediation.Sender = streamSender{}

func (s streamSender) Send(agentID string, m *wardv1.ConnectResponse) error {
	err := s.streams.Send(agentID, m)
	if errors.Is(err, agentapi.ErrNotConnected) {
		return fmt.Errorf("%w: %w", remediation.ErrNotConnected, err)
	}
	return err
}
