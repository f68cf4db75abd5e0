package bootstrap

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
)

// The controller asks a collector for a bootstrap with a signed command (CommandSpec
// addressed to the collector) whose one step has the action "bootstrap_agent" and these
// parameters. The token is the fresh one-time enrollment token bound to the address.
const (
	ParamAddress = "address"   // required: the device's address, "host" or "host:port"
	ParamToken   = "token"     // required: the one-time enrollment token
	ParamDevice  = "device_id" // optional: the inventory's device id, for the log
	ParamUser    = "user"      // optional: SSH user, root by default
	ParamRoot    = "root"      // optional: install root, "/" by default
	ParamInit    = "init"      // optional: "systemd" or "fallback"; detected by default
)

// Files of the collector's bootstrap material, under StateDir in its state directory:
// the SSH key the collector logs in with (the MSP authorises its public half on the
// clinic's servers), the known_hosts it verifies them against, and agent binaries for
// other architectures than its own (ward-agent-linux-<GOARCH>).
const (
	StateDir       = "bootstrap"
	KeyFile        = "id_ed25519"
	KnownHostsFile = "known_hosts"
	BinaryDirName  = "bin"
)

// ConfigFor returns the bootstrap configuration of a collector whose state directory is
// stateDir and whose controller is controller: its key and known_hosts under
// stateDir/bootstrap, its own trust bundle for the new agents, and trust on first use
// (each first use recorded in known_hosts and reported as evidence).
func ConfigFor(stateDir, controller string, log *slog.Logger) Config {
	dir := filepath.Join(stateDir, StateDir)
	return Config{KeyPath: filepath.Join(dir, KeyFile),
		KnownHostsPath: filepath.Join(dir, KnownHostsFile), TrustOnFirstUse: true,
		BinaryDir: filepath.Join(dir, BinaryDirName), Controller: controller,
		CAFile: filepath.Join(stateDir, "ca.pem"), Log: log}
}

// TargetFromParams reads a bootstrap command's step parameters.
func TargetFromParams(p map[string]string) (Target, error) {
	t := Target{Address: p[ParamAddress], Token: p[ParamToken], User: p[ParamUser],
		Root: p[ParamRoot], Init: p[ParamInit]}
	switch {
	case t.Address == "":
		return t, fmt.Errorf("bootstrap: parameter %q is required", ParamAddress)
	case t.Token == "":
		return t, fmt.Errorf("bootstrap: parameter %q is required", ParamToken)
	}
	return t, nil
}

// Evidence describes a result in one line for the command's result, which the controller
// records: the host key and how it was trusted, the architecture, the init system, and
// each step with a star when it changed the target.
func (r *Result) Evidence() string {
	var steps []string
	for _, s := range r.Steps {
		name := s.Name
		if s.Changed {
			name += "*"
		}
		steps = append(steps, name)
	}
	hk := "host key not seen"
	if r.HostKey.Fingerprint != "" {
		hk = fmt.Sprintf("host key %s %s (%s)", r.HostKey.Type, r.HostKey.Fingerprint,
			r.HostKey.Trust)
	}
	return fmt.Sprintf("%s: %s; arch %s; init %s; steps %s", r.Address, hk,
		orDash(r.Arch), orDash(r.Init), strings.Join(steps, " "))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Handler runs bootstrap commands' steps on a collector.
type Handler struct {
	Config Config
}

// Handle runs one "bootstrap_agent" step with params. In a dry run it only checks the
// parameters. The output is Result.Evidence, also on failure (then with the error, which
// names the step).
func (h *Handler) Handle(ctx context.Context, params map[string]string, dry bool) (
	changed bool, output string, err error) {
	t, err := TargetFromParams(params)
	if err != nil {
		return false, "", err
	}
	if dry {
		return true, "would bootstrap an agent on " + t.Address, nil
	}
	log := h.Config.Log
	if log != nil && params[ParamDevice] != "" {
		h2 := *h
		h2.Config.Log = log.With("device", params[ParamDevice])
		h = &h2
	}
	res, err := Run(ctx, h.Config, t)
	for _, s := range res.Steps {
		changed = changed || s.Changed
	}
	if err != nil {
		return changed, res.Evidence(), err
	}
	return changed, res.Evidence(), nil
}
