package agent

import (
	"context"
	"log/slog"

	"github.com/wardsec/ward/agent/internal/commands"
	"github.com/wardsec/ward/agent/internal/drift"
	"github.com/wardsec/ward/agent/internal/state"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// commandQueue is how many received commands may wait for the one running. The
// controller resends unfinished commands when the agent reconnects, so one dropped
// because the queue is full is not lost.
const commandQueue = 16

// CommandLedgerFile holds the ids of the commands this agent ran, in the state directory.
const CommandLedgerFile = state.CommandLedgerFile

// enqueuer is where results go (client.Client).
type enqueuer interface {
	Enqueue(req *wardv1.ConnectRequest) (uint64, error)
}

// commandRunner runs the commands the stream receives, one at a time and in order, off
// the stream's receive loop: it reports each result, then the verification of the
// command's checks, so the controller sees the result before the re-check.
type commandRunner struct {
	exec  *commands.Executor
	drift *drift.Loop
	sink  enqueuer
	log   *slog.Logger
	queue chan *wardv1.SignedPayload

	// verify is the verification the executor asked for during the running command;
	// only the runner's goroutine touches it.
	verify *verification
}

type verification struct {
	commandID string
	checks    []string
}

// newCommandRunner returns a runner whose exec, drift and sink the caller sets before Run.
func newCommandRunner(log *slog.Logger) *commandRunner {
	return &commandRunner{log: log, queue: make(chan *wardv1.SignedPayload, commandQueue)}
}

// deferVerify is the executor's Verify hook: it notes the checks to re-run once the
// result is enqueued.
func (r *commandRunner) deferVerify(_ context.Context, commandID string, checks []string) {
	r.verify = &verification{commandID: commandID, checks: checks}
}

// Receive queues a command; it never blocks (client.Config.Commands).
func (r *commandRunner) Receive(p *wardv1.SignedPayload) {
	select {
	case r.queue <- p:
	default:
		r.log.Warn("command dropped: too many waiting; the controller resends it on "+
			"reconnect", logkey.Count, commandQueue)
	}
}

// Run runs queued commands until ctx ends, then returns nil.
func (r *commandRunner) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-r.queue:
			r.run(ctx, p)
		}
	}
}

func (r *commandRunner) run(ctx context.Context, p *wardv1.SignedPayload) {
	r.verify = nil
	// A result is reported even when ctx ended during the command: the ledger already
	// holds its id, so a resent copy would only be refused as a replay.
	res := r.exec.Handle(ctx, p)
	_, err := r.sink.Enqueue(&wardv1.ConnectRequest{
		Body: &wardv1.ConnectRequest_CommandResult{CommandResult: res}})
	if err != nil {
		r.log.Error("report command result", logkey.Command, res.GetCommandId(),
			logkey.Error, err)
	}

	if v := r.verify; v != nil && ctx.Err() == nil {
		if err := r.drift.Verify(ctx, v.commandID, v.checks); err != nil && ctx.Err() == nil {
			r.log.Error("verify command", logkey.Command, v.commandID, logkey.Error, err)
		}
	}
}
