package loadgen

import (
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

	if err := sleep(ctx, cfg.Settle); err != nil {
		return err
	}
	rss0, err := RSS(srv.pid)
	if err != nil {
		return err
	}
	cfg.Log.Info("idle agents: baseline", "server", srv.name, "rss_kib", rss0>>10)

	prev := 0
	for _, n := range cfg.Sizes {
		start := time.Now()
		if err := fleet.Grow(ctx, ids[prev:n], cfg.Concurrency); err != nil {
			return fmt.Errorf("%s: connect idle agents: %w", srv.name, err)
		}
		prev = n
		cfg.Log.Info("idle agents connected", "server", srv.name, logkey.Count, n,
			logkey.Duration, time.Since(start).Round(time.Millisecond))

		if err := sleep(ctx, cfg.Settle); err != nil {
			return err
		}
		rss, err := RSS(srv.pid)
		if err != nil {
			return err
		}
		res.addIdle(srv.name, n, rss0, rss, fleet.Dropped())
		cfg.Log.Info("idle agents measured", "server", srv.name, logkey.Count, n,
			"rss_kib", rss>>10, "per_agent_kib", (int64(rss)-int64(rss0))/int64(n)>>10,
			"dropped", fleet.Dropped())
	}

	fleet.Close()
	return sleep(ctx, cfg.Settle) // let the server tear the sessions down
}

// throughput runs the heartbeat test against srv: HeartbeatAgents sessions, each keeping
// HeartbeatWindow heartbeats unacknowledged, for HeartbeatDuration.
func throughput(ctx context.Context, cfg Config, srv server, ids []Identity,
	res *Results) error {
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
	cfg.Log.Info("heartbeat test", "server", srv.name, logkey.Count, n,
		"window", cfg.HeartbeatWindow, logkey.Duration, cfg.HeartbeatDuration)

	runCtx, cancel := context.WithTimeout(ctx, cfg.HeartbeatDuration)
	defer cancel()
	var (
		lat    Latencies
		mu     sync.Mutex
		acked  int
		errs   []error
		wg     sync.WaitGroup
		window = cfg.HeartbeatWindow
	)
	start := time.Now()
	for _, s := range sessions {
		wg.Go(func() {
			r, err := s.Pump(runCtx, window)
			lat.AddAll(r.latencies)
			mu.Lock()
			defer mu.Unlock()
			acked += r.acked
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	elapsed := min(time.Since(start), cfg.HeartbeatDuration)

	t := Throughput{AcksPerSec: rate(acked, elapsed), Latency: lat.Summary(),
		Failed: len(errs)}
	res.setThroughput(srv.name, t)
	cfg.Log.Info("heartbeat test done", "server", srv.name, "acks_per_second",
		int(t.AcksPerSec), "p50", t.Latency.P50, "p99", t.Latency.P99, "failed", len(errs))
	if len(errs) > 0 {
		cfg.Log.Warn("heartbeat sessions failed", "server", srv.name, logkey.Count, len(errs),
			logkey.Error, errs[0])
	}
	return sleep(ctx, cfg.Settle)
}

// closeAll closes the sessions that are set up.
func closeAll(sessions []*Session) {
	for _, s := range sessions {
		if s != nil {
			s.Close()
		}
	}
}
