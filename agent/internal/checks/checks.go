// Package checks evaluates baseline tests against a host: every file through hostfs,
// every service and package through svcpkg, and commands only from the allowlist compiled
// into the agent (baseline.Commands), resolved under the host root.
package checks

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/wardsec/ward/agent/internal/hostfs"
	"github.com/wardsec/ward/agent/internal/svcpkg"
	"github.com/wardsec/ward/pkg/baseline"
)

// State is a check's outcome.
type State int

// States.
const (
	Unknown State = iota
	Pass
	Fail
	Error
	NotApplicable
)

func (s State) String() string {
	return [...]string{"unknown", "pass", "fail", "error", "not_applicable"}[s]
}

// Result is one check's outcome on this host. Observed is raw (not yet scrubbed).
type Result struct {
	CheckID  string
	State    State
	Observed string // what the agent saw
	Message  string // why, for errors and failures
}

// CommandTimeout bounds an allowlisted command.
const CommandTimeout = 10 * time.Second

// Evaluator evaluates tests. It is safe for concurrent use.
type Evaluator struct {
	fs       *hostfs.FS
	svc      svcpkg.Provider
	platform baseline.Platform
	log      *slog.Logger

	mu      sync.Mutex
	regexps map[string]*regexp.Regexp
}

// Config configures an Evaluator. FS, Services and Log are required.
type Config struct {
	FS       *hostfs.FS
	Services svcpkg.Provider
	// Platform is the host's platform; empty means detect it from /etc/os-release.
	Platform baseline.Platform
	Log      *slog.Logger
}

// New returns an Evaluator.
func New(cfg Config) *Evaluator {
	if cfg.Platform == "" {
		cfg.Platform, _ = DetectPlatform(cfg.FS)
	}
	return &Evaluator{fs: cfg.FS, svc: cfg.Services, platform: cfg.Platform, log: cfg.Log,
		regexps: make(map[string]*regexp.Regexp)}
}

// Platform returns the platform checks are evaluated for.
func (e *Evaluator) Platform() baseline.Platform { return e.platform }

// Simulated reports whether service and package state is simulated.
func (e *Evaluator) Simulated() bool { return e.svc.Simulated() }

// Check evaluates one check, honouring its platforms.
func (e *Evaluator) Check(ctx context.Context, c *baseline.Check) Result {
	r := Result{CheckID: c.ID}
	if !c.AppliesTo(e.platform) {
		r.State, r.Message = NotApplicable, fmt.Sprintf("not for platform %q", e.platform)
		return r
	}

	o := e.Test(ctx, &c.Test)
	r.State, r.Observed, r.Message = o.State, o.Observed, o.Message
	if e.svc.Simulated() && o.usedServices {
		r.Message = strings.TrimSpace(r.Message + " (service and package state simulated)")
	}
	return r
}

// Baseline evaluates every check of b (or only ids, when given) in order.
func (e *Evaluator) Baseline(ctx context.Context, b *baseline.Baseline, ids ...string) []Result {
	var out []Result
	for i := range b.Checks {
		c := &b.Checks[i]
		if len(ids) > 0 && !contains(ids, c.ID) {
			continue
		}
		out = append(out, e.Check(ctx, c))
	}
	return out
}

// Outcome is the result of one test.
type Outcome struct {
	State    State
	Observed string
	Message  string

	usedServices bool
}

func pass(observed string) Outcome { return Outcome{State: Pass, Observed: observed} }

func fail(observed, format string, args ...any) Outcome {
	return Outcome{State: Fail, Observed: observed, Message: fmt.Sprintf(format, args...)}
}

func errored(err error) Outcome { return Outcome{State: Error, Message: err.Error()} }

// Test evaluates one test.
func (e *Evaluator) Test(ctx context.Context, t *baseline.Test) Outcome {
	switch t.Kind {
	case baseline.KindFileExists, baseline.KindFileAbsent:
		return e.fileExists(t)
	case baseline.KindFileMode:
		return e.fileMode(t)
	case baseline.KindRegexMatch, baseline.KindRegexNoMatch:
		return e.regex(t)
	case baseline.KindKeyValue:
		return e.keyValue(t)
	case baseline.KindSysctl:
		return e.sysctl(t)
	case baseline.KindModuleLoaded, baseline.KindModuleDisabled:
		return e.module(t)
	case baseline.KindMountOptions:
		return e.mount(t)
	case baseline.KindServiceActive, baseline.KindServiceEnabled, baseline.KindServiceInactive:
		return e.service(ctx, t)
	case baseline.KindPackageInstalled, baseline.KindPackageAbsent:
		return e.pkg(ctx, t)
	case baseline.KindListening, baseline.KindNotListening:
		return e.listening(t)
	case baseline.KindUsers:
		return e.users(t)
	case baseline.KindCommand:
		return e.command(ctx, t)
	case baseline.KindAny:
		return e.anyOf(ctx, t.Any)
	case baseline.KindAll:
		return e.allOf(ctx, t.All)
	}
	return errored(fmt.Errorf("unknown test kind %q", t.Kind))
}

func (e *Evaluator) anyOf(ctx context.Context, tests []baseline.Test) Outcome {
	var obs, msgs []string
	errs, used := 0, false
	for i := range tests {
		o := e.Test(ctx, &tests[i])
		used = used || o.usedServices
		if o.State == Pass {
			o.usedServices = used
			return o
		}
		if o.State == Error {
			errs++
		}
		obs = append(obs, nonEmpty(o.Observed, o.Message))
		if o.Message != "" {
			msgs = append(msgs, o.Message)
		}
	}
	o := fail(strings.Join(obs, "; "), "no alternative holds: %s", strings.Join(msgs, "; "))
	if errs == len(tests) {
		o.State = Error
	}
	o.usedServices = used
	return o
}

func (e *Evaluator) allOf(ctx context.Context, tests []baseline.Test) Outcome {
	var obs []string
	var firstErr *Outcome
	used := false
	for i := range tests {
		o := e.Test(ctx, &tests[i])
		used = used || o.usedServices
		obs = append(obs, nonEmpty(o.Observed, o.Message))
		switch o.State {
		case Fail:
			o.Observed, o.usedServices = strings.Join(obs, "; "), used
			return o
		case Error:
			if firstErr == nil {
				firstErr = &o
			}
		}
	}
	if firstErr != nil {
		firstErr.usedServices = used
		return *firstErr
	}
	o := pass(strings.Join(obs, "; "))
	o.usedServices = used
	return o
}

// re compiles and caches a regular expression; patterns apply per line.
func (e *Evaluator) re(expr string) (*regexp.Regexp, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.regexps[expr]; ok {
		return r, nil
	}
	r, err := regexp.Compile("(?m)" + expr)
	if err != nil {
		return nil, err
	}
	e.regexps[expr] = r
	return r, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func nonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
