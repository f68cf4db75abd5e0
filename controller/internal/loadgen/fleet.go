package loadgen

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	"github.com/wardsec/ward/pkg/logkey"
)

// Fleet holds many idle sessions to one server, as a population of connected agents that
// only heartbeat: every session drains what the server sends, and Beat sends each session a
// heartbeat once per the interval its Welcome announced. Safe for concurrent use.
type Fleet struct {
	dialer *Dialer
	log    *slog.Logger

	mu       sync.Mutex // guards sessions and closed
	sessions []*idleSession
	closed   bool

	receivers sync.WaitGroup // one receive loop per session
	dropped   atomic.Int64   // sessions the server ended
	pushed    atomic.Int64   // messages other than acks that the server sent
	pushBytes atomic.Int64   // their encoded size
}

// idleSession is a session with its heartbeat schedule, owned by Fleet.Beat.
type idleSession struct {
	*Session
	lastBeat time.Time
	closing  atomic.Bool
}

// NewFleet returns an empty fleet that connects through d.
func NewFleet(d *Dialer, log *slog.Logger) *Fleet {
	return &Fleet{dialer: d, log: log}
}

// Grow connects the agents ids with up to concurrency setups in flight and adds them to the
// fleet. It returns the first setup error; sessions set up before it stay in the fleet.
func (f *Fleet) Grow(ctx context.Context, ids []Identity, concurrency int) error {
	next := make(chan Identity)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(next)
		for _, id := range ids {
			select {
			case next <- id:
			case <-gctx.Done():
				return nil
			}
		}
		return nil
	})
	for range max(concurrency, 1) {
		g.Go(func() error {
			for id := range next {
				s, err := f.dialer.Connect(gctx, id)
				if err != nil {
					return err
				}
				f.add(s)
			}
			return nil
		})
	}
	return g.Wait()
}

// add registers s and starts its receive loop; a fleet already closed closes s instead.
func (f *Fleet) add(s *Session) {
	is := &idleSession{Session: s, lastBeat: time.Now()}

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		s.Close()
		return
	}
	f.sessions = append(f.sessions, is)
	f.receivers.Add(1)
	go f.receive(is)
}

// receive drains is until its stream ends, counting ends that Close did not cause.
func (f *Fleet) receive(is *idleSession) {
	defer f.receivers.Done()
	for {
		resp, err := is.stream.Recv()
		if err == nil && resp.GetAck() == nil {
			f.pushed.Add(1)
			f.pushBytes.Add(int64(proto.Size(resp)))
		}
		if err != nil {
			if !is.closing.Load() {
				f.dropped.Add(1)
				f.log.Warn("server ended an idle session", logkey.Agent, is.id.ID,
					logkey.Error, err)
			}
			return
		}
	}
}

// Len returns the number of sessions set up so far.
func (f *Fleet) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sessions)
}

// Pushed returns how many messages other than acks (welcomes after setup, baselines,
// commands) the server has sent the fleet, and their encoded size in bytes.
func (f *Fleet) Pushed() (n, bytes int64) { return f.pushed.Load(), f.pushBytes.Load() }

// Dropped returns how many sessions the server ended.
func (f *Fleet) Dropped() int64 { return f.dropped.Load() }

// Beat sends each session a heartbeat when its interval has passed since the last one, until
// ctx is cancelled. It returns nil on cancellation. Only one Beat may run at a time.
func (f *Fleet) Beat(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			f.beatDue(now)
		}
	}
}

// beatDue sends a heartbeat on every session whose interval has passed.
func (f *Fleet) beatDue(now time.Time) {
	f.mu.Lock()
	due := make([]*idleSession, 0, len(f.sessions)/8)
	for _, is := range f.sessions {
		if is.interval > 0 && now.Sub(is.lastBeat) >= is.interval {
			due = append(due, is)
		}
	}
	f.mu.Unlock()

	for _, is := range due {
		is.lastBeat = now
		if err := is.Heartbeat(); err != nil && !is.closing.Load() &&
			!errors.Is(err, context.Canceled) {
			f.log.Debug("idle heartbeat not sent", logkey.Agent, is.id.ID, logkey.Error, err)
		}
	}
}

// Close ends every session and waits for their receive loops. The fleet accepts no sessions
// afterwards.
func (f *Fleet) Close() {
	f.mu.Lock()
	f.closed = true
	sessions := f.sessions
	f.sessions = nil
	f.mu.Unlock()

	for _, is := range sessions {
		is.closing.Store(true)
		is.Close()
	}
	f.receivers.Wait()
}
