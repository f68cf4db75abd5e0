// Package commands executes signed commands from the controller. A command runs only if
// its signature verifies with the pinned policy key, it names this agent and tenant, it
// has not expired, every action is known, and its id has never run here (executed ids
// are kept durably in the state directory and recorded before the first step runs, so a
// crash cannot make a command run twice). Each step has a timeout; a dry run changes
// nothing; results carry each step's outcome with scrubbed, bounded output. After the
// steps the command's verify_checks are re-run through the Verify hook.
package commands

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/agent/internal/actions"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/policysig"
	"github.com/wardsec/ward/pkg/runbook"
	"github.com/wardsec/ward/pkg/scrub"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// MaxOutput bounds each step's reported output, in bytes.
const MaxOutput = 4096

// Config configures an Executor. Every field but Verify and Now is required.
type Config struct {
	AgentID, Tenant string
	PolicyKey       *ecdsa.PublicKey
	Runner          *actions.Runner
	// LedgerPath is the file of executed command ids (in the state directory).
	LedgerPath string
	// Verify re-runs checks after a command; nil skips verification.
	Verify func(ctx context.Context, commandID string, checks []string)
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Executor runs commands one at a time. Handle is safe for concurrent use.
type Executor struct {
	cfg    Config
	ledger *ledger
}

// New opens the ledger and returns an Executor.
func New(cfg Config) (*Executor, error) {
	switch {
	case cfg.PolicyKey == nil:
		return nil, errors.New("commands: no policy key")
	case cfg.Runner == nil || cfg.Log == nil || cfg.LedgerPath == "":
		return nil, errors.New("commands: runner, ledger path and logger are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l, err := openLedger(cfg.LedgerPath, cfg.Now())
	if err != nil {
		return nil, err
	}
	return &Executor{cfg: cfg, ledger: l}, nil
}

// Handle verifies and runs one signed command and returns its result, refusals included.
// It never returns nil.
func (x *Executor) Handle(ctx context.Context, p *wardv1.SignedPayload) *wardv1.CommandResult {
	start := x.cfg.Now()
	spec, reason := x.admit(p)
	res := &wardv1.CommandResult{CommandId: spec.GetCommandId(), StartedAt: timestamppb.New(start)}
	log := x.cfg.Log.With(logkey.Command, spec.GetCommandId(), logkey.Runbook, spec.GetRunbookId())
	if reason != "" {
		log.Warn("command refused", logkey.Reason, reason)
		res.Status, res.RefusalReason = wardv1.CommandStatus_COMMAND_STATUS_REFUSED, reason
		res.FinishedAt = timestamppb.New(x.cfg.Now())
		return res
	}

	log.Info("command accepted", "steps", len(spec.GetSteps()), "dry_run", spec.GetDryRun())
	res.Status = x.runSteps(ctx, spec, res, log)
	res.FinishedAt = timestamppb.New(x.cfg.Now())
	log.Info("command finished", "status", res.Status.String())

	if x.cfg.Verify != nil && !spec.GetDryRun() && len(spec.GetVerifyChecks()) > 0 {
		x.cfg.Verify(ctx, spec.GetCommandId(), spec.GetVerifyChecks())
	}
	return res
}

// admit verifies p and returns the spec, or a refusal reason. A command that passes is
// recorded in the ledger before it runs.
func (x *Executor) admit(p *wardv1.SignedPayload) (*wardv1.CommandSpec, string) {
	spec := &wardv1.CommandSpec{}
	err := policysig.Verify(x.cfg.PolicyKey, string(proto.MessageName(spec)), policysig.Signed{
		PayloadType: p.GetPayloadType(), Payload: p.GetPayload(),
		Signature: p.GetSignature(), KeyID: p.GetKeyId(),
	})
	if err != nil {
		// Decode anyway, only to name the command in the refusal.
		unverified := &wardv1.CommandSpec{}
		_ = proto.Unmarshal(p.GetPayload(), unverified)
		return &wardv1.CommandSpec{CommandId: unverified.GetCommandId()},
			"signature does not verify: " + err.Error()
	}
	if err := proto.Unmarshal(p.GetPayload(), spec); err != nil {
		return spec, "malformed command: " + err.Error()
	}

	switch {
	case spec.GetCommandId() == "":
		return spec, "command has no id"
	case spec.GetAgentId() != x.cfg.AgentID || spec.GetTenant() != x.cfg.Tenant:
		return spec, fmt.Sprintf("addressed to agent %q of tenant %q", spec.GetAgentId(), spec.GetTenant())
	case spec.GetExpiresAt() == nil || !x.cfg.Now().Before(spec.GetExpiresAt().AsTime()):
		return spec, "expired"
	}
	for i, s := range spec.GetSteps() {
		if err := actions.Validate(s.GetAction(), s.GetParams()); err != nil {
			return spec, fmt.Sprintf("step %d: %v", i+1, err)
		}
	}
	if len(spec.GetSteps()) == 0 {
		return spec, "command has no steps"
	}
	if !spec.GetDryRun() {
		fresh, err := x.ledger.record(spec.GetCommandId(), spec.GetExpiresAt().AsTime())
		if err != nil {
			return spec, "cannot record the command durably: " + err.Error()
		}
		if !fresh {
			return spec, "already executed (replay)"
		}
	}
	return spec, ""
}

// runSteps runs the steps in order, stopping at the first failure.
func (x *Executor) runSteps(ctx context.Context, spec *wardv1.CommandSpec,
	res *wardv1.CommandResult, log *slog.Logger) wardv1.CommandStatus {
	for i, s := range spec.GetSteps() {
		timeout := s.GetTimeout().AsDuration()
		if timeout <= 0 || timeout > runbook.MaxStepTimeout {
			timeout = runbook.DefaultStepTimeout
		}
		sctx, cancel := context.WithTimeout(actions.WithCommandID(ctx, spec.GetCommandId()),
			timeout)
		out, err := x.cfg.Runner.Run(sctx, s.GetAction(), s.GetParams(), spec.GetDryRun())
		timedOut := sctx.Err() == context.DeadlineExceeded
		cancel()

		step := &wardv1.StepResult{Action: s.GetAction(), Changed: out.Changed,
			Output: bound(scrub.Text(out.Output))}
		switch {
		case timedOut:
			step.Status = wardv1.CommandStatus_COMMAND_STATUS_TIMED_OUT
			step.Output = bound(scrub.Text(fmt.Sprintf("timed out after %s; %s", timeout, out.Output)))
		case err != nil:
			step.Status = wardv1.CommandStatus_COMMAND_STATUS_FAILED
			step.Output = bound(scrub.Text(err.Error()))
		case spec.GetDryRun():
			step.Status = wardv1.CommandStatus_COMMAND_STATUS_DRY_RUN
		default:
			step.Status = wardv1.CommandStatus_COMMAND_STATUS_SUCCEEDED
		}
		res.Steps = append(res.Steps, step)
		log.Info("command step", "step", i+1, "action", s.GetAction(),
			"status", step.Status.String(), "changed", step.Changed)
		if step.Status == wardv1.CommandStatus_COMMAND_STATUS_FAILED ||
			step.Status == wardv1.CommandStatus_COMMAND_STATUS_TIMED_OUT {
			return step.Status
		}
	}
	if spec.GetDryRun() {
		return wardv1.CommandStatus_COMMAND_STATUS_DRY_RUN
	}
	return wardv1.CommandStatus_COMMAND_STATUS_SUCCEEDED
}

func bound(s string) string {
	if len(s) <= MaxOutput {
		return s
	}
	return s[:MaxOutput-len(" [truncated]")] + " [truncated]"
}
