// Package actions implements the runbook actions compiled into the agent (the names of
// runbook.Actions). Every action reaches the host through hostfs and svcpkg, reports
// whether it changed anything, and in a dry run changes nothing and reports what it
// would change.
package actions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"

	"github.com/wardsec/ward/agent/internal/hostfs"
	"github.com/wardsec/ward/agent/internal/svcpkg"
	"github.com/wardsec/ward/pkg/baseline"
	"github.com/wardsec/ward/pkg/runbook"
)

// ErrUnknownAction is returned for an action the agent does not implement.
var ErrUnknownAction = errors.New("actions: unknown action")

// ErrShellDisabled is returned for the shell action unless Config.AllowShell is set.
var ErrShellDisabled = errors.New("actions: arbitrary shell is disabled on this agent")

// Outcome is what an action did.
type Outcome struct {
	Changed bool   // the host changed (or would have, in a dry run)
	Output  string // what happened, for the operator; not yet scrubbed or bounded
}

// Config configures a Runner. FS, Services and Log are required.
type Config struct {
	FS       *hostfs.FS
	Services svcpkg.Provider
	// Baseline returns the baseline in force, for restore_file; nil means none.
	Baseline func() *baseline.Baseline
	// RotateCertificate renews the agent's certificate now and returns once the new
	// certificate is in place (stored and used for new connections), or with the reason
	// it is not; nil refuses rotate_certificate.
	RotateCertificate func(ctx context.Context) error
	// EvaluateBaseline evaluates the baseline now and reports the result (every check
	// when full is set) as the report of command commandID; nil refuses evaluate_baseline.
	EvaluateBaseline func(ctx context.Context, commandID string, full bool) (
		EvaluationSummary, error)
	// AllowShell enables the shell action. Off unless the agent's own configuration says so.
	AllowShell bool
	// BootstrapAgent runs bootstrap_agent (a collector's SSH bootstrap, package
	// bootstrap); nil refuses it, as on every agent that is not a collector.
	BootstrapAgent func(ctx context.Context, params map[string]string, dry bool) (
		changed bool, output string, err error)
	Log *slog.Logger
}

// Runner runs actions. It is safe for concurrent use, but steps that touch the same
// file must not run concurrently (the command executor runs steps in order).
type Runner struct {
	cfg Config
}

// New returns a Runner.
func New(cfg Config) *Runner { return &Runner{cfg: cfg} }

type actionFunc func(r *Runner, ctx context.Context, p map[string]string, dry bool) (Outcome, error)

var impls = map[string]actionFunc{
	runbook.ActionEnsureLine:           (*Runner).ensureLine,
	runbook.ActionEnsureKeyValue:       (*Runner).ensureKeyValue,
	runbook.ActionSetMode:              (*Runner).setMode,
	runbook.ActionRestoreFile:          (*Runner).restoreFile,
	runbook.ActionRestartService:       serviceOp(svcpkg.OpRestart),
	runbook.ActionReloadService:        serviceOp(svcpkg.OpReload),
	runbook.ActionEnableService:        serviceOp(svcpkg.OpEnable),
	runbook.ActionDisableService:       serviceOp(svcpkg.OpDisable),
	runbook.ActionSetSysctl:            (*Runner).setSysctl,
	runbook.ActionApplySecurityUpdates: (*Runner).applyUpdates,
	runbook.ActionLockAccount:          (*Runner).lockAccount,
	runbook.ActionRotateCertificate:    (*Runner).rotateCertificate,
	runbook.ActionShell:                (*Runner).shell,
	runbook.ActionBootstrapAgent:       (*Runner).bootstrapAgent,
	runbook.ActionEvaluateBaseline:     (*Runner).evaluateBaseline,
}

// ErrNotCollector is returned for bootstrap_agent on an agent without the collector role.
var ErrNotCollector = errors.New("actions: bootstrap_agent runs only on a collector")

func (r *Runner) bootstrapAgent(ctx context.Context, p map[string]string, dry bool) (Outcome, error) {
	if r.cfg.BootstrapAgent == nil {
		return Outcome{}, ErrNotCollector
	}
	changed, out, err := r.cfg.BootstrapAgent(ctx, p, dry)
	return Outcome{Changed: changed, Output: out}, err
}

// Known reports whether the agent implements action.
func Known(action string) bool { return impls[action] != nil }

// Names returns the implemented action names, sorted.
func Names() []string {
	out := make([]string, 0, len(impls))
	for n := range impls {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Validate checks an action's parameters against runbook.Actions without running it.
func Validate(action string, params map[string]string) error {
	spec, ok := runbook.Actions[action]
	if !ok || !Known(action) {
		return fmt.Errorf("%w %q", ErrUnknownAction, action)
	}
	for _, p := range spec.Required {
		if params[p] == "" {
			return fmt.Errorf("action %s: missing parameter %q", action, p)
		}
	}
	for k := range params {
		if !contains(spec.Required, k) && !contains(spec.Optional, k) {
			return fmt.Errorf("action %s: unknown parameter %q", action, k)
		}
	}
	return nil
}

// Run runs action with params. With dry set it changes nothing and reports what would
// change. ctx bounds the action (the step's timeout).
func (r *Runner) Run(ctx context.Context, action string, params map[string]string, dry bool) (Outcome, error) {
	if err := Validate(action, params); err != nil {
		return Outcome{}, err
	}
	return impls[action](r, ctx, params, dry)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
