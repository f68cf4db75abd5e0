// Package presence marks agents offline when they stop talking. An agent whose last
// message is older than Misses heartbeat intervals is set Online=false in the store; its
// next committed message sets it online again (the store does that). Changes are logged
// once, when they happen, never on every beat.
package presence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/logkey"
)

// DefaultMisses is how many heartbeat intervals an agent may miss before it is offline.
const DefaultMisses = 3

// Store is the part of store.Store the sweeper uses.
type Store interface {
	ListAgents(ctx context.Context, tenant string) ([]store.Agent, error)
	UpdateAgent(ctx context.Context, id string, fn func(*store.Agent) error) (store.Agent, error)
}

// Config configures a Sweeper.
type Config struct {
	Store    Store            // required
	Interval time.Duration    // required: the agents' heartbeat interval
	Misses   int              // default DefaultMisses
	Log      *slog.Logger     // required
	Clock    func() time.Time // nil: time.Now
}

// Sweeper scans the store every Interval/2 and marks silent agents offline. Run it once.
type Sweeper struct {
	cfg   Config
	log   *slog.Logger
	clock func() time.Time

	// offline holds the agents this sweeper marked offline, to log their return once.
	// Only Run's goroutine touches it.
	offline map[string]bool
}

// New checks cfg, fills its defaults and returns a Sweeper.
func New(cfg Config) (*Sweeper, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("presence: no store")
	case cfg.Interval <= 0:
		return nil, errors.New("presence: no heartbeat interval")
	case cfg.Log == nil:
		return nil, errors.New("presence: no logger")
	}
	if cfg.Misses <= 0 {
		cfg.Misses = DefaultMisses
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Sweeper{cfg: cfg, log: cfg.Log, clock: cfg.Clock, offline: map[string]bool{}}, nil
}

// Run sweeps every Interval/2 until ctx ends, then returns nil. A failed sweep is logged
// and retried at the next tick.
func (s *Sweeper) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval / 2)
	defer t.Stop()

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("presence sweep", logkey.Error, err)
			}
		}
	}
}

// errUnchanged aborts an update that turned out to have nothing to do.
var errUnchanged = errors.New("presence: unchanged")

// Sweep does one scan: it marks agents offline whose last message is older than Misses
// intervals and logs the return of agents it marked offline before. It is not safe to
// call concurrently with itself or Run.
func (s *Sweeper) Sweep(ctx context.Context) error {
	agents, err := s.cfg.Store.ListAgents(ctx, "")
	if err != nil {
		return fmt.Errorf("list agents: %w", err)
	}
	cutoff := s.clock().Add(-time.Duration(s.cfg.Misses) * s.cfg.Interval)

	seen := make(map[string]bool, len(s.offline))
	for _, a := range agents {
		switch {
		case a.Online && s.offline[a.ID]:
			delete(s.offline, a.ID)
			s.log.Info("agent online", logkey.Agent, a.ID, logkey.Tenant, a.Tenant)
		case a.Online && !a.Revoked && a.LastSeen.Before(cutoff):
			if err := s.markOffline(ctx, a.ID, cutoff); err != nil {
				return err
			}
		}
		if s.offline[a.ID] {
			seen[a.ID] = true
		}
	}

	// Forget agents that no longer exist, so the map cannot grow without bound.
	for id := range s.offline {
		if !seen[id] {
			delete(s.offline, id)
		}
	}
	return nil
}

// markOffline sets the agent offline if, inside the transaction, it is still online and
// silent since before cutoff.
func (s *Sweeper) markOffline(ctx context.Context, id string, cutoff time.Time) error {
	a, err := s.cfg.Store.UpdateAgent(ctx, id, func(a *store.Agent) error {
		if !a.Online || !a.LastSeen.Before(cutoff) {
			return errUnchanged
		}
		a.Online = false
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged), errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("mark agent %s offline: %w", id, err)
	}

	s.offline[id] = true
	s.log.Info("agent offline", logkey.Agent, id, logkey.Tenant, a.Tenant,
		"last_seen", a.LastSeen)
	return nil
}
