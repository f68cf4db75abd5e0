// Package agent assembles a running ward-agent from its state directory: it loads the
// identity, opens the spool and runs the controller client until it is told to stop.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/wardsec/ward/agent/internal/client"
	"github.com/wardsec/ward/agent/internal/discovery"
	"github.com/wardsec/ward/agent/internal/hostinfo"
	"github.com/wardsec/ward/agent/internal/spool"
	"github.com/wardsec/ward/agent/internal/state"
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
	// With "collector", the agent also runs discovery (see package discovery).
	Roles []string
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

	c, err := client.New(client.Config{
		Addr: addr, Info: st.Info, Dir: cfg.Dir, Cert: st.Cert, CertObtained: st.CertTime, Roots: st.Roots,
		PolicyKey: st.PolicyKey, Spool: sp, Log: cfg.Log,
		Facts: func() *wardv1.HostFacts {
			return hostinfo.Collect(cfg.HostRoot).Proto(version.Version, st.Info.Roles)
		},
	})
	if err != nil {
		return err
	}

	cfg.Log.Info("agent starting", logkey.Version, version.Version,
		logkey.Identity, st.Info.ID().String(), logkey.Addr, addr,
		logkey.Serial, st.Cert.Leaf.SerialNumber.Text(16),
		logkey.NotAfter, st.Cert.Leaf.NotAfter.UTC(), "spool", spoolSummary(sp.State()))
	roles := st.Info.Roles
	if len(cfg.Roles) > 0 {
		roles = cfg.Roles
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.Run(gctx) })
	if slices.Contains(roles, "collector") {
		col, err := discovery.New(discovery.Config{
			SitePath: filepath.Join(string(cfg.Dir), discovery.ConfigFile), Sink: c,
			Privileged: os.Geteuid() == 0, Log: cfg.Log.With("component", "collector"),
		})
		if err != nil {
			return err
		}
		cfg.Log.Info("collector role enabled", logkey.Path, discovery.ConfigFile)
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
