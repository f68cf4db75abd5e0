package loadgen

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/wardsec/ward/pkg/logkey"
)

// idle connects ever more idle agents to srv and reads its memory at each of cfg.Sizes.
func idle(ctx context.Context, cfg Config, srv server, ids []Identity, res *Results) error {
	fleet := NewFleet(srv.dialer, cfg.Log)
	defer fleet.Close()
	beatCtx, stopBeat := context.WithCancel(ctx)
	beatDone := make(chan error, 1)
	go func() { beatDone <- fleet.Beat(beatCtx) }()
	defer func() { stopBeat(); <-beatDone }()

	v, err := srv.dialer.LearnBaseline(ctx, ids[0], 3*time.Second)
	if err != nil {
		return fmt.Errorf("%s: %w", srv.name, err)
	}
	if v != "" {
		cfg.Log.Info("agents report the offered baseline", "server", srv.name,
			logkey.Version, v)
	}
	if err := sleep(ctx, cfg.Settle); err != nil {
		return err
	}
	rss0, err := RSS(srv.pid)
	if err != nil {
		return err
	}
	cfg.Log.Info("idle agents: memory before connecting", "server", srv.name, "rss_kib", rss0>>10)

	prev := 0
	for _, n := range cfg.Sizes {
		start := time.Now()
		if err := fleet.Grow(ctx, ids[prev:n], cfg.Concurrency); err != nil {
			return fmt.Errorf("%s: connect idle agents: %w", srv.name, err)
		}
		prev = n
		setup := time.Since(start)
		cfg.Log.Info("idle agents connected", "server", srv.name, logkey.Count, n,
			logkey.Duration, time.Since(start).Round(time.Millisecond))

		if err := sleep(ctx, cfg.Settle); err != nil {
			return err
		}
		rss, err := RSS(srv.pid)
		if err != nil {
			return err
		}
		res.addIdle(srv.name, n, rss0, rss, fleet.Dropped(), setup)
		pushed, pushedBytes := fleet.Pushed()
		cfg.Log.Info("idle agents measured", "server", srv.name, logkey.Count, n,
			"rss_kib", rss>>10, "per_agent_kib", (int64(rss)-int64(rss0))/int64(n)>>10,
			"dropped", fleet.Dropped(), "pushed", pushed, "pushed_kib", pushedBytes>>10)
	}

	fleet.Close()
	return sleep(ctx, cfg.Settle) // let the server tear the sessions down
}

// heartbeatRounds is how many times the heartbeat test alternates between the servers, each
// round running HeartbeatDuration/heartbeatRounds on each.
const heartbeatRounds = 3

// heartbeatTally accumulates one server's heartbeat rounds.
type heartbeatTally struct {
	acked   int
	elapsed time.Duration
	lat     Latencies
	failed  int
}

// throughput runs the heartbeat test on every server, alternating in rounds so that both
// see the same background load, and records the results.
func throughput(ctx context.Context, cfg Config, servers []server, ids []Identity,
	res *Results) error {
	tallies := make([]heartbeatTally, len(servers))
	each := cfg.HeartbeatDuration / heartbeatRounds
	for round := range heartbeatRounds {
		for i, srv := range servers {
			cfg.Log.Info("heartbeat round", "server", srv.name, "round", round+1,
				logkey.Count, min(cfg.HeartbeatAgents, len(ids)), "window", cfg.HeartbeatWindow,
				logkey.Duration, each)
			if err := heartbeatRound(ctx, cfg, srv, ids, each, &tallies[i]); err != nil {
				return err
			}
		}
	}

	for i, srv := range servers {
		t := &tallies[i]
		tp := Throughput{AcksPerSec: rate(t.acked, t.elapsed), Latency: t.lat.Summary(),
			Failed: t.failed}
		res.setThroughput(srv.name, tp)
		cfg.Log.Info("heartbeat test done", "server", srv.name, "acks_per_second",
			int(tp.AcksPerSec), "p50", tp.Latency.P50, "p99", tp.Latency.P99, "failed", t.failed)
	}
	return nil
}

// heartbeatRound connects HeartbeatAgents sessions to srv, pumps heartbeats through all of
// them for d with HeartbeatWindow in flight each, and adds the outcome to t.
func heartbeatRound(ctx context.Context, cfg Config, srv server, ids []Identity,
	d time.Duration, t *heartbeatTally) error {
	n := min(cfg.HeartbeatAgents, len(ids))
	sessions := make([]*Session, n)
	err := forEach(ctx, n, cfg.Concurrency, func(ctx context.Context, i int) error {
		s, err := srv.dialer.Connect(ctx, ids[i])
		sessions[i] = s
		return err
	})
	if err != nil {
		closeAll(sessions)
		return fmt.Errorf("%s: connect heartbeat agents: %w", srv.name, err)
	}

	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		first error
	)
	start := time.Now()
	for _, s := range sessions {
		wg.Go(func() {
			r, err := s.pumpHeartbeats(runCtx, cfg.HeartbeatWindow)
			t.lat.AddAll(r.latencies)
			mu.Lock()
			defer mu.Unlock()
			t.acked += r.acked
			if err != nil {
				t.failed++
				first = cmp.Or(first, err)
			}
		})
	}
	wg.Wait()
	t.elapsed += min(time.Since(start), d)

	if first != nil {
		cfg.Log.Warn("heartbeat session failed", "server", srv.name, logkey.Error, first)
	}
	return sleep(ctx, time.Second) // let the server tear the sessions down
}

// closeAll closes the sessions that are set up.
func closeAll(sessions []*Session) {
	for _, s := range sessions {
		if s != nil {
			s.Close()
		}
	}
}
