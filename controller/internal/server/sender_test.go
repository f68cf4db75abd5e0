package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/wardsec/ward/controller/internal/agentapi"
	"github.com/wardsec/ward/controller/internal/remediation"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// engineCalls records what the hooks hand to the engine.
type engineCalls struct {
	mu    sync.Mutex
	calls []string
}

func (e *engineCalls) add(s string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, s)
	return nil
}

func (e *engineCalls) AgentConnected(_ context.Context, tenant, agent string) error {
	return e.add("connected " + tenant + "/" + agent)
}

func (e *engineCalls) HandleDrift(_ context.Context, _, agent string,
	r *wardv1.DriftReport) error {
	return e.add("drift " + agent + " " + r.GetBaselineId())
}

func (e *engineCalls) HandleResult(_ context.Context, _, agent string,
	r *wardv1.CommandResult) error {
	return e.add("result " + agent + " " + r.GetCommandId())
}

func TestStreamHooks(t *testing.T) {
	calls := &engineCalls{}
	h := streamHooks{engine: calls, log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()

	h.Connected(ctx, "clinic-a", "a1", &wardv1.Hello{})
	h.Committed(ctx, "clinic-a", "a1", &wardv1.ConnectRequest{Seq: 1,
		Body: &wardv1.ConnectRequest_Heartbeat{Heartbeat: &wardv1.Heartbeat{}}})
	h.Committed(ctx, "clinic-a", "a1", &wardv1.ConnectRequest{Seq: 2,
		Body: &wardv1.ConnectRequest_DriftReport{DriftReport: &wardv1.DriftReport{
			BaselineId: "hipaa-v1"}}})
	h.Committed(ctx, "clinic-a", "a1", &wardv1.ConnectRequest{Seq: 3,
		Body: &wardv1.ConnectRequest_CommandResult{CommandResult: &wardv1.CommandResult{
			CommandId: "c1"}}})

	want := []string{"connected clinic-a/a1", "drift a1 hipaa-v1", "result a1 c1"}
	if len(calls.calls) != len(want) {
		t.Fatalf("engine calls = %q, want %q", calls.calls, want)
	}
	for i := range want {
		if calls.calls[i] != want[i] {
			t.Fatalf("engine calls = %q, want %q", calls.calls, want)
		}
	}
}

func TestStreamSenderNotConnected(t *testing.T) {
	e := newEnv(t, nil)
	err := streamSender{streams: e.srv.agents}.Send("nobody", &wardv1.ConnectResponse{})
	if !errors.Is(err, remediation.ErrNotConnected) || !errors.Is(err, agentapi.ErrNotConnected) {
		t.Fatalf("Send = %v, want remediation.ErrNotConnected", err)
	}
}
