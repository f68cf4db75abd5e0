package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"time"

	"github.com/wardsec/ward/pkg/logkey"
)

// Config configures one load-generation run.
type Config struct {
	// Installation is the controller's data directory: trust bundle and admin operator;
	// required.
	Installation Installation
	// Controller is the controller's address (host:port). Empty measures the bare server
	// alone, with agent certificates minted by the development issuer of Installation
	// (see WriteDevInstallation) instead of enrolled.
	Controller string
	// ControllerPID is the controller's process id, for its memory; required with Controller.
	ControllerPID int
	// Bare is the bare server's address; required.
	Bare string
	// BarePID is the bare server's process id; required.
	BarePID int
	// Tenant receives the enrolled agents; default "loadgen". Created when missing.
	Tenant string
	// Sizes are the numbers of connected idle agents at which memory is measured, in
	// ascending order; default 1,000, 5,000 and 10,000.
	Sizes []int
	// TokenUses is how many enrollments each token allows (1 to 1,000); default 1,000.
	// Enrollments sharing a token contend for its use count.
	TokenUses int
	// Concurrency is how many enrollments, handshakes or connection setups are in flight at
	// once; default twice the number of CPUs.
	Concurrency int
	// HeartbeatAgents is the number of agents of the throughput test; default 2,000, so
	// that each sends well under the controller's per-agent rate limit (50 messages/s).
	HeartbeatAgents int
	// HeartbeatWindow is how many heartbeats each of them keeps unacknowledged; default 8.
	HeartbeatWindow int
	// HeartbeatDuration is how long the throughput test runs on each server; default 10s.
	HeartbeatDuration time.Duration
	// Settle is the pause before each memory reading; default 5s.
	Settle time.Duration
	// AgentBinary is a ward-agent binary to enroll, run and measure; empty skips it. Needs
	// Controller.
	AgentBinary string
	// AgentIdle is how long the agent runs before its memory is read; default 10s.
	AgentIdle time.Duration
	// EnrollOnly stops after the enrollment and handshake rounds: no idle memory,
	// heartbeat throughput or agent measurements.
	EnrollOnly bool
	// Log receives progress; required.
	Log *slog.Logger
}

// setDefaults fills the zero fields of cfg and rejects missing required ones.
func (cfg *Config) setDefaults() error {
	switch {
	case cfg.Installation.Dir == "":
		return errors.New("loadgen: no installation directory")
	case cfg.Bare == "" || cfg.BarePID <= 0:
		return errors.New("loadgen: bare server address and pid required")
	case cfg.Controller != "" && cfg.ControllerPID <= 0:
		return errors.New("loadgen: controller pid required")
	case cfg.AgentBinary != "" && cfg.Controller == "":
		return errors.New("loadgen: measuring the agent needs a controller")
	case cfg.Log == nil:
		return errors.New("loadgen: no logger")
	}
	if cfg.Tenant == "" {
		cfg.Tenant = "loadgen"
	}
	if len(cfg.Sizes) == 0 {
		cfg.Sizes = []int{1000, 5000, 10000}
	}
	if !slices.IsSorted(cfg.Sizes) || cfg.Sizes[0] <= 0 {
		return errors.New("loadgen: sizes must be positive and ascending")
	}
	cfg.TokenUses = min(orDefault(cfg.TokenUses, maxTokenUses), maxTokenUses)
	cfg.Concurrency = orDefault(cfg.Concurrency, 2*runtime.NumCPU())
	cfg.HeartbeatAgents = orDefault(cfg.HeartbeatAgents, 2000)
	cfg.HeartbeatWindow = orDefault(cfg.HeartbeatWindow, 8)
	cfg.HeartbeatDuration = orDefault(cfg.HeartbeatDuration, 10*time.Second)
	cfg.Settle = orDefault(cfg.Settle, 5*time.Second)
	cfg.AgentIdle = orDefault(cfg.AgentIdle, 10*time.Second)
	return nil
}

// orDefault returns v, or def when v is zero or negative.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// server is one of the two servers under test.
type server struct {
	name   string // "controller" or "bare"
	pid    int
	dialer *Dialer
}

// Run measures the controller (when configured) and the bare server with the same workload
// and returns the figures. It needs max(Sizes) agent identities: against a controller it
// enrolls them, otherwise it mints them.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	roots, err := cfg.Installation.Roots()
	if err != nil {
		return nil, err
	}
	res := &Results{Agents: cfg.Sizes[len(cfg.Sizes)-1]}
	bare := server{name: "bare", pid: cfg.BarePID, dialer: NewDialer(cfg.Bare, roots)}
	servers := []server{bare}
	if cfg.Controller != "" {
		ctrl := server{name: "controller", pid: cfg.ControllerPID,
			dialer: NewDialer(cfg.Controller, roots)}
		servers = []server{ctrl, bare}
	}

	ids, err := identities(ctx, cfg, servers, res)
	if err != nil {
		return nil, err
	}
	if cfg.EnrollOnly {
		return res, nil
	}
	for _, srv := range servers {
		if err := idle(ctx, cfg, srv, ids, res); err != nil {
			return nil, err
		}
	}
	if err := throughput(ctx, cfg, servers, ids, res); err != nil {
		return nil, err
	}
	if cfg.AgentBinary != "" {
		if err := measureAgent(ctx, cfg, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// roundSize is how many enrollments, then handshakes, make one round. Alternating short
// rounds exposes both servers to the same background load on a shared machine.
const roundSize = 1000

// identities enrolls the agents with the controller in rounds, each followed by as many
// handshakes with the bare server; without a controller it mints the agents and measures
// the handshakes in one go. It records both rates.
func identities(ctx context.Context, cfg Config, servers []server,
	res *Results) ([]Identity, error) {
	n := res.Agents
	bare := servers[len(servers)-1]
	if cfg.Controller == "" {
		cfg.Log.Info("minting agent certificates", logkey.Count, n)
		ids, err := mintAll(cfg.Installation, cfg.Tenant, n)
		if err != nil {
			return nil, err
		}
		took, err := measureHandshakes(ctx, bare.dialer, ids, cfg.Concurrency)
		if err != nil {
			return nil, err
		}
		res.HandshakesPerSec = rate(n, took)
		return ids, nil
	}

	secrets, err := tokenSecrets(ctx, cfg.Controller, cfg.Installation, cfg.Tenant, n,
		cfg.TokenUses)
	if err != nil {
		return nil, err
	}
	apps, err := prepareApplications(n)
	if err != nil {
		return nil, err
	}
	cfg.Log.Info("enrolling agents, handshaking as many with the bare server", logkey.Count, n)
	ids := make([]Identity, 0, n)
	var enrolling, handshaking time.Duration
	for first := 0; first < n; first += roundSize {
		last := min(first+roundSize, n)
		round, took, err := enrollAll(ctx, servers[0].dialer, secrets, cfg.TokenUses,
			apps[first:last], first, cfg.Concurrency)
		if err != nil {
			return nil, err
		}
		enrolling += took
		ids = append(ids, round...)

		took, err = measureHandshakes(ctx, bare.dialer, round, cfg.Concurrency)
		if err != nil {
			return nil, err
		}
		handshaking += took
	}
	res.EnrollPerSec, res.HandshakesPerSec = rate(n, enrolling), rate(n, handshaking)
	cfg.Log.Info("enrolled", logkey.Count, n, "enrollments_per_second", int(res.EnrollPerSec),
		"handshakes_per_second", int(res.HandshakesPerSec))
	return ids, nil
}

// mintAll mints n identities with the development issuer of in.
func mintAll(in Installation, tenant string, n int) ([]Identity, error) {
	iss, err := LoadIssuer(in.Dir)
	if err != nil {
		return nil, err
	}
	ids := make([]Identity, n)
	for i := range ids {
		if ids[i], err = iss.Mint(tenant, fmt.Sprintf("lg%06d", i)); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
