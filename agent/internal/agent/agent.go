// Package agent assembles a running ward-agent from its state directory: it loads the
// identity, opens the spool, runs the controller client, evaluates the baseline in force
// against the host under HostRoot (package drift), applies verified baseline updates and
// runs signed commands (package commands), until it is told to stop.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wardsec/ward/agent/internal/actions"
	"github.com/wardsec/ward/agent/internal/bootstrap"
	"github.com/wardsec/ward/agent/internal/checks"
	"github.com/wardsec/ward/agent/internal/client"
	"github.com/wardsec/ward/agent/internal/commands"
	"github.com/wardsec/ward/agent/internal/discovery"
	"github.com/wardsec/ward/agent/internal/drift"
	"github.com/wardsec/ward/agent/internal/hostfs"
	"github.com/wardsec/ward/agent/internal/hostinfo"
	"github.com/wardsec/ward/agent/internal/spool"
	"github.com/wardsec/ward/agent/internal/state"
	"github.com/wardsec/ward/agent/internal/svcpkg"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/version"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Config configures Run.
type Config struct {
	// Dir is the state directory written by enrollment. Required.
	Dir state.Dir
	// Controller overrides the address in agent.json when set.
	Controller string
	// HostRoot is where host facts (and later checks) read the host; empty means "/".
	HostRoot string
	// SpoolMaxBytes bounds the spool; zero means spool.DefaultMaxBytes.
	SpoolMaxBytes int64
	// Roles overrides the roles recorded at enrollment when set ("host", "collector").
	// With "collector", the agent also runs discovery (see package discovery). The Hello
	// lists them; the controller refuses a role an operator did not allow the agent.
	Roles []string
	// AllowShell enables the runbook action that runs arbitrary shell. Off by default:
	// only the agent's own configuration can turn it on, never the controller.
	AllowShell bool
	// DriftInterval is the baseline evaluation schedule; zero means 15 minutes.
	DriftInterval time.Duration
	// EvaluateNow asks for a baseline evaluation at each receive (SIGUSR1 in ward-agent);
	// nil means never.
	EvaluateNow <-chan struct{}
	// Log receives everything the agent logs. Required.
	Log *slog.Logger
}

// Run runs the agent until ctx is cancelled and returns nil then, after closing the stream
// and the spool. It returns an error when the state directory is unusable, the spool cannot
// be opened, or the certificate has expired (wrapping client.ErrCertExpired).
func Run(ctx context.Context, cfg Config) error {
	switch {
	case cfg.Dir == "":
		return errors.New("agent: no state directory")
	case cfg.Log == nil:
		return errors.New("agent: no logger")
	}

	st, err := cfg.Dir.Load()
	if errors.Is(err, state.ErrNotEnrolled) {
		return fmt.Errorf("%s is not enrolled: run ward-agent enroll first", cfg.Dir)
	}
	if err != nil {
		return err
	}
	addr := st.Info.Controller
	if cfg.Controller != "" {
		addr = cfg.Controller
	}

	sp, err := spool.Open(spool.Config{Dir: cfg.Dir.SpoolPath(), MaxBytes: cfg.SpoolMaxBytes,
		Log: cfg.Log.With("component", "spool")})
	if err != nil {
		return err
	}
	defer sp.Close()

	bs, err := loadBaselines(cfg.Dir, cfg.Log)
	if err != nil {
		return err
	}
	cmds := newCommandRunner(cfg.Log.With("component", "commands"))
	var loop *drift.Loop // set below; the client calls the hooks only once it runs
	var c *client.Client
	witnessed, err := witnessHook(cfg.Dir, st.Info.Tenant, rolesOf(cfg, st), &c,
		cfg.Log.With("component", "witness"))
	if err != nil {
		return err
	}
	var col *discovery.Collector // set below for a collector; the client runs later
	sitePath := filepath.Join(string(cfg.Dir), discovery.ConfigFile)
	var sites func(*wardv1.SiteConfigUpdate)
	if slices.Contains(rolesOf(cfg, st), "collector") {
		sites = siteHook(sitePath, &col, cfg.Log.With("component", "collector"))
	}
	c, err = client.New(client.Config{
		Addr: addr, Info: st.Info, Dir: cfg.Dir, Cert: st.Cert, CertObtained: st.CertTime, Roots: st.Roots,
		PolicyKey: st.PolicyKey, Spool: sp, Log: cfg.Log,
		// The Hello lists the roles the agent runs; the controller accepts only those an
		// operator allowed it.
		Facts: func() *wardv1.HostFacts {
			return hostinfo.Collect(cfg.HostRoot).Proto(version.Version, rolesOf(cfg, st))
		},
		Commands:        cmds.Receive,
		Baselines:       func(spec *wardv1.BaselineSpec) { applyBaseline(bs, loop, spec, cfg.Log) },
		BaselineVersion: bs.Version,
		Checkpoints:     witnessed,
		SiteConfigs:     sites,
	})
	if err != nil {
		return err
	}
	loop, err = buildHost(cfg, st, c, bs, cmds)
	if err != nil {
		return err
	}

	cfg.Log.Info("agent starting", logkey.Version, version.Version,
		logkey.Identity, st.Info.ID().String(), logkey.Addr, addr,
		logkey.Serial, st.Cert.Leaf.SerialNumber.Text(16),
		logkey.NotAfter, st.Cert.Leaf.NotAfter.UTC(), "spool", spoolSummary(sp.State()))
	if slices.Contains(rolesOf(cfg, st), "collector") {
		col, err = discovery.New(discovery.Config{
			SitePath: sitePath, Sink: c, Tenant: st.Info.Tenant,
			Privileged: os.Geteuid() == 0, Log: cfg.Log.With("component", "collector"),
		})
		if err != nil {
			return err
		}
		cfg.Log.Info("collector role enabled", logkey.Path, discovery.ConfigFile)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.Run(gctx) })
	g.Go(func() error { return loop.Run(gctx) })
	g.Go(func() error { return cmds.Run(gctx) })
	g.Go(func() error { return forwardRequests(gctx, cfg.EvaluateNow, loop) })
	if col != nil {
		g.Go(func() error { return col.Run(gctx) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	cfg.Log.Info("agent stopped")
	return nil
}

func spoolSummary(s spool.State) string {
	return fmt.Sprintf("%d messages, %d bytes, next seq %d", s.Messages, s.Bytes, s.NextSeq)
}

// buildHost assembles the host side: checks and actions under cfg.HostRoot, the drift
// loop reporting through c, and the command executor feeding cmds.
func buildHost(cfg Config, st *state.State, c *client.Client, bs *baselines,
	cmds *commandRunner) (*drift.Loop, error) {
	root := cfg.HostRoot
	if root == "" {
		root = "/"
	}
	fsys, err := hostfs.New(root)
	if err != nil {
		return nil, fmt.Errorf("agent: host root: %w", err)
	}
	platform, family := checks.DetectPlatform(fsys)
	svc := svcpkg.New(fsys, family, cfg.Log.With("component", "svcpkg"))
	eval := checks.New(checks.Config{FS: fsys, Services: svc, Platform: platform,
		Log: cfg.Log.With("component", "checks")})
	cfg.Log.Info("host checks ready", logkey.Path, root, "platform", string(platform),
		"simulated_services", svc.Simulated(), "baseline", bs.Current().ID,
		logkey.Version, bs.Version(), "allow_shell", cfg.AllowShell)

	loop, err := drift.New(drift.Config{Evaluator: eval, Baseline: bs.Current, Sink: c,
		StatePath: filepath.Join(string(cfg.Dir), drift.StateFile),
		Interval:  cfg.DriftInterval, Log: cfg.Log.With("component", "drift")})
	if err != nil {
		return nil, err
	}

	acfg := actions.Config{FS: fsys, Services: svc, Baseline: bs.Current,
		RotateCertificate: func(ctx context.Context) error {
			return c.Renew(ctx, "runbook rotate_certificate")
		},
		EvaluateBaseline: func(ctx context.Context, commandID string,
			full bool) (actions.EvaluationSummary, error) {
			sum, err := loop.EvaluateRequested(ctx, commandID, full)
			return actions.EvaluationSummary(sum), err
		},
		AllowShell: cfg.AllowShell, Log: cfg.Log.With("component", "actions")}
	if slices.Contains(rolesOf(cfg, st), "collector") {
		// A collector installs agents over SSH with its own key (bootstrap.StateDir).
		ctl := st.Info.Controller
		if cfg.Controller != "" {
			ctl = cfg.Controller
		}
		h := &bootstrap.Handler{Config: bootstrap.ConfigFor(string(cfg.Dir), ctl,
			cfg.Log.With("component", "bootstrap"))}
		acfg.BootstrapAgent = h.Handle
	}
	runner := actions.New(acfg)
	exec, err := commands.New(commands.Config{AgentID: st.Info.AgentID,
		Tenant: st.Info.Tenant, PolicyKey: st.PolicyKey, Runner: runner,
		LedgerPath: filepath.Join(string(cfg.Dir), CommandLedgerFile),
		Verify:     cmds.deferVerify, Log: cfg.Log.With("component", "commands")})
	if err != nil {
		return nil, err
	}
	cmds.exec, cmds.drift, cmds.sink = exec, loop, c
	return loop, nil
}

// applyBaseline applies a verified baseline update and asks for an evaluation when it
// changed the baseline in force; a broken update is refused and the old baseline stays.
func applyBaseline(bs *baselines, loop *drift.Loop, spec *wardv1.BaselineSpec,
	log *slog.Logger) {
	changed, err := bs.Apply(spec)
	if err != nil {
		log.Error("baseline update refused; the current baseline stays",
			"baseline", bs.Current().ID, logkey.Version, bs.Version(), logkey.Error, err)
		return
	}
	if !changed {
		log.Debug("baseline update already applied", logkey.Version, spec.GetVersion())
		return
	}
	log.Info("baseline applied", "baseline", spec.GetBaselineId(),
		logkey.Version, spec.GetVersion())
	loop.Request(drift.TriggerBaseline)
}

// forwardRequests turns each receive on requests into an evaluation request, until ctx
// ends.
func forwardRequests(ctx context.Context, requests <-chan struct{}, loop *drift.Loop) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-requests: // a nil channel never receives
			loop.Request(drift.TriggerRequest)
		}
	}
}
