// Package agentinstall connects the device inventory to the collector's SSH bootstrap.
// When the inventory decides a device should carry an agent, the Installer sends the
// device's collector a "bootstrap_agent" command through the remediation engine (the
// same path as runbooks: signed with the policy key, stored before it is sent, sent again
// after reconnects, expired when overdue). The collector's result comes back to the
// Installer: a success is recorded as evidence (host key and how it was trusted,
// architecture, init system, steps changed) and the device stays enrolling until its new
// agent connects; a failure, refusal, timeout or expiry goes to the inventory's
// BootstrapFailed, which marks the device failed and opens an incident naming the step.
//
// The controller never holds clinic SSH keys: the collector logs in with its own key.
// The one-time enrollment token travels inside the signed command and is never logged.
package agentinstall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/inventory"
	"github.com/wardsec/ward/controller/internal/remediation"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/runbook"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Owner is the store.Command.Owner of bootstrap commands.
const Owner = "bootstrap"

// TypeDeviceBootstrapped is the evidence record of a successful bootstrap; subject: device
// id; data: collector, address, evidence (the collector's one-line account).
const TypeDeviceBootstrapped = "device.bootstrapped"

// Step parameters of the collector's bootstrap_agent action (agent/internal/bootstrap).
const (
	paramAddress = "address"
	paramToken   = "token"
	paramDevice  = "device_id"
)

// StepTimeout is how long the collector may take for one bootstrap.
const StepTimeout = 10 * time.Minute

// Issuer issues owned commands (remediation.Engine implements it).
type Issuer interface {
	IssueOwned(ctx context.Context, c remediation.OwnedCommand) (store.Command, error)
}

// Failures records failed bootstraps (inventory.Inventory implements it).
type Failures interface {
	BootstrapFailed(ctx context.Context, tenant, deviceID, step, reason string) error
}

// Installer implements inventory.Bootstrapper and remediation.ResultHandler. Issuer and
// Failures are set during assembly, before the first call (the inventory needs the
// Installer before the engine exists); the Installer is then safe for concurrent use.
type Installer struct {
	Issuer   Issuer            // required before Bootstrap is called
	Failures Failures          // required before results arrive
	Recorder evidence.Recorder // nil records nothing
	Log      *slog.Logger      // required
	// TTL is how long a bootstrap command may wait for the collector's result; zero
	// means inventory.BootstrapTokenTTL (the token is useless after it).
	TTL time.Duration
}

var (
	_ inventory.Bootstrapper    = (*Installer)(nil)
	_ remediation.ResultHandler = (*Installer)(nil)
)

// Bootstrap sends req's collector the signed bootstrap command. It returns once the
// command is stored (and sent, when the collector is connected).
func (in *Installer) Bootstrap(ctx context.Context, req inventory.BootstrapRequest) error {
	if in.Issuer == nil {
		return errors.New("agentinstall: no command issuer configured")
	}
	ttl := in.TTL
	if ttl <= 0 {
		ttl = inventory.BootstrapTokenTTL
	}
	c, err := in.Issuer.IssueOwned(ctx, remediation.OwnedCommand{Tenant: req.Tenant,
		Agent: req.Collector, Owner: Owner, Subject: req.DeviceID,
		Name: runbook.ActionBootstrapAgent, TTL: ttl,
		Steps: []remediation.Step{{Action: runbook.ActionBootstrapAgent,
			Timeout: StepTimeout, Params: map[string]string{paramAddress: req.Address,
				paramToken: req.Token, paramDevice: req.DeviceID}}}})
	if err != nil {
		return fmt.Errorf("agentinstall: %w", err)
	}
	in.Log.Info("bootstrap requested", logkey.Tenant, req.Tenant, logkey.Device, req.DeviceID,
		logkey.Agent, req.Collector, logkey.Command, c.ID)
	return nil
}

// CommandFinished routes a bootstrap command's outcome: evidence on success, the
// inventory's BootstrapFailed otherwise. r is nil when the command expired.
func (in *Installer) CommandFinished(ctx context.Context, c store.Command,
	r *wardv1.CommandResult) error {
	if r.GetStatus() == wardv1.CommandStatus_COMMAND_STATUS_SUCCEEDED {
		return in.succeeded(ctx, c, r)
	}
	step, reason := Failure(r)
	if in.Failures == nil {
		return errors.New("agentinstall: no failure recorder configured")
	}
	if err := in.Failures.BootstrapFailed(ctx, c.Tenant, c.Subject, step, reason); err != nil {
		return fmt.Errorf("agentinstall: %w", err)
	}
	return nil
}

// succeeded records the collector's account of a successful bootstrap.
func (in *Installer) succeeded(ctx context.Context, c store.Command,
	r *wardv1.CommandResult) error {
	account := ""
	if steps := r.GetSteps(); len(steps) > 0 {
		account = steps[len(steps)-1].GetOutput()
	}
	in.Log.Info("bootstrap done; waiting for the new agent", logkey.Tenant, c.Tenant,
		logkey.Device, c.Subject, logkey.Agent, c.Agent, logkey.Command, c.ID)
	if in.Recorder == nil {
		return nil
	}
	_, err := in.Recorder.Record(ctx, evidence.Entry{Tenant: c.Tenant,
		Type:    TypeDeviceBootstrapped,
		Actor:   evidence.Actor{Kind: evidence.ActorAgent, ID: c.Agent},
		Subject: c.Subject,
		Data:    map[string]any{"command": c.ID, "evidence": account}})
	if err != nil {
		return fmt.Errorf("agentinstall: record bootstrap of %s: %w", c.Subject, err)
	}
	return nil
}

// Failure names the step and reason of a bootstrap result that did not succeed. The
// collector reports a failed step as "bootstrap <step>: <reason>"; a refused command is
// step "command", a result that never came (nil r) is step "request".
func Failure(r *wardv1.CommandResult) (step, reason string) {
	if r == nil {
		return "request", "the collector did not answer before the command expired"
	}
	if r.GetStatus() == wardv1.CommandStatus_COMMAND_STATUS_REFUSED {
		return "command", "refused by the collector: " + r.GetRefusalReason()
	}
	out := ""
	if steps := r.GetSteps(); len(steps) > 0 {
		out = steps[len(steps)-1].GetOutput()
	}
	if r.GetStatus() == wardv1.CommandStatus_COMMAND_STATUS_TIMED_OUT {
		return "timeout", orDefault(out, "the bootstrap timed out")
	}
	if rest, ok := strings.CutPrefix(out, "bootstrap "); ok {
		if step, why, ok := strings.Cut(rest, ": "); ok && step != "" &&
			!strings.ContainsAny(step, " \t") {
			return step, why
		}
	}
	return "unknown", orDefault(out, "command "+r.GetStatus().String())
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
