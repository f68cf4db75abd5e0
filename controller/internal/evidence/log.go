package evidence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/evidence"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/scrub"
)

// DefaultMaxBatch is how many records one commit takes at most.
const DefaultMaxBatch = 1024

// Config configures a Log.
type Config struct {
	// Store keeps the records. Required.
	Store store.Evidence
	// Scrubber cleans every string in an entry's data, and the subject. Required.
	Scrubber *scrub.Scrubber
	// Log receives warnings; nil discards them.
	Log *slog.Logger
	// Clock gives record times; nil means time.Now.
	Clock func() time.Time
	// MaxBatch bounds the records committed in one transaction; zero means
	// DefaultMaxBatch.
	MaxBatch int
	// Appended, when not nil, is called after each commit with the tenant's new head. It
	// must not block (the checkpointer's Appended).
	Appended func(tenant string, head store.EvidenceHead)
}

// Log is the Recorder backed by the store. Concurrent Record calls for one tenant are
// committed together in one transaction (group commit): while one commit is on its way
// to disk, the next ones queue. A caller leads at most one commit: when its own record is
// durable it hands the queue to the first caller waiting in it. Before a commit the
// leader waits a little (about as long as the previous commit, at most maxGather) for the
// callers already inside Record that are still preparing their entries, so that one sync
// carries as many records as possible. Log is safe for concurrent use.
type Log struct {
	cfg Config

	mu      sync.Mutex // guards tenants
	tenants map[string]*tenantLog
}

var _ Recorder = (*Log)(nil)

// maxGather bounds how long a leader waits for callers still preparing their entries.
const maxGather = 2 * time.Millisecond

// tenantLog is one tenant's queue and cached head.
type tenantLog struct {
	mu         sync.Mutex // guards the fields below
	head       store.EvidenceHead
	lastTime   time.Time
	loaded     bool // head is known
	pending    []*pending
	flushing   bool          // some caller leads the queue
	active     int           // Record calls under way (preparing, queued or waiting)
	gathering  bool          // the leader waits on kick
	kick       chan struct{} // wakes a gathering leader; capacity 1
	lastCommit time.Duration // how long the previous commit took
	maxBatch   int           // the Log's MaxBatch
}

// pending is an entry waiting for its commit.
type pending struct {
	e    Entry
	data []byte // canonical, scrubbed
	done chan struct{}
	rec  Receipt
	err  error
	// lead is closed when the caller is handed the queue; promoted and gone are guarded
	// by the tenant's mu: a caller that gives up (context done) is never handed it.
	lead     chan struct{}
	promoted bool
	gone     bool
}

// NewLog returns a Log. It panics when a required field is missing.
func NewLog(cfg Config) *Log {
	switch {
	case cfg.Store == nil:
		panic("evidence: NewLog without a store")
	case cfg.Scrubber == nil:
		panic("evidence: NewLog without a scrubber")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	return &Log{cfg: cfg, tenants: map[string]*tenantLog{}}
}

// Record implements Recorder: it returns once the record is durable.
func (l *Log) Record(ctx context.Context, e Entry) (Receipt, error) {
	if e.Tenant == "" || e.Type == "" || e.Actor.Kind == "" {
		return Receipt{}, errors.New("evidence: record: tenant, type and actor are required")
	}
	t := l.tenant(e.Tenant)
	t.mu.Lock()
	t.active++
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.active--
		t.wake()
		t.mu.Unlock()
	}()

	data, err := evidence.Canonical(e.Data, l.cfg.Scrubber.Text)
	if err != nil {
		return Receipt{}, fmt.Errorf("evidence: record %s: %w", e.Type, err)
	}
	e.Subject = l.cfg.Scrubber.Text(e.Subject)
	p := &pending{e: e, data: data, done: make(chan struct{}), lead: make(chan struct{})}

	t.mu.Lock()
	t.pending = append(t.pending, p)
	t.wake()
	first := !t.flushing
	t.flushing = true
	t.mu.Unlock()
	if first {
		l.flush(ctx, e.Tenant, t)
	}

	lead := p.lead
	for {
		select {
		case <-p.done:
			return p.rec, p.err
		case <-lead:
			lead = nil // handed the queue once
			l.flush(ctx, e.Tenant, t)
		case <-ctx.Done():
			t.mu.Lock()
			promoted := p.promoted
			p.gone = !promoted
			t.mu.Unlock()
			if promoted {
				l.flush(ctx, e.Tenant, t)
			}
			// it may still be committed: recorded but not acknowledged, never the reverse
			return Receipt{}, ctx.Err()
		}
	}
}

// wake wakes a gathering leader whose wait is over. t.mu must be held.
func (t *tenantLog) wake() {
	if !t.gathering || !t.gathered() {
		return
	}
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// gathered reports whether every caller under way is queued or the batch is full. t.mu
// must be held.
func (t *tenantLog) gathered() bool {
	return t.active <= len(t.pending) || len(t.pending) >= t.maxBatch
}

func (l *Log) tenant(id string) *tenantLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.tenants[id]
	if !ok {
		t = &tenantLog{kick: make(chan struct{}, 1), maxBatch: l.cfg.MaxBatch}
		l.tenants[id] = t
	}
	return t
}

// flush commits batches from the head of the queue until the queue is empty or its
// first caller can take it over: after the first batch (which holds the flushing
// caller's own entry) the queue goes to the first caller left in it.
func (l *Log) flush(ctx context.Context, tenant string, t *tenantLog) {
	ctx = context.WithoutCancel(ctx) // others wait on this commit too
	for {
		t.mu.Lock()
		l.gather(t)
		n := min(len(t.pending), l.cfg.MaxBatch)
		batch := t.pending[:n:n]
		t.pending = t.pending[n:]
		t.mu.Unlock()

		if n > 0 {
			l.commitBatch(ctx, tenant, t, batch)
		}

		t.mu.Lock()
		switch {
		case len(t.pending) == 0:
			t.flushing = false
			t.mu.Unlock()
			return
		case !t.pending[0].gone:
			t.pending[0].promoted = true
			close(t.pending[0].lead)
			t.mu.Unlock()
			return
		}
		t.mu.Unlock() // its caller gave up waiting: commit it here
	}
}

// commitBatch commits batch and releases its callers.
func (l *Log) commitBatch(ctx context.Context, tenant string, t *tenantLog, batch []*pending) {
	start := time.Now()
	head, n, err := l.commit(ctx, tenant, t, batch)
	elapsed := time.Since(start)
	for _, p := range batch {
		if err != nil && p.err == nil {
			p.err = err
		}
		close(p.done)
	}
	if err == nil && n > 0 && l.cfg.Appended != nil {
		l.cfg.Appended(tenant, head)
	}
	t.mu.Lock()
	t.lastCommit = elapsed
	t.mu.Unlock()
}

// gather waits, with t.mu held, until every caller under way is queued, the batch is
// full, or about the previous commit's time (1 ms to maxGather) has passed: callers that
// are still preparing their entries then share the next sync.
func (l *Log) gather(t *tenantLog) {
	wait := min(max(t.lastCommit, time.Millisecond), maxGather)
	if wait <= 0 || t.gathered() {
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for !t.gathered() {
		t.gathering = true
		t.mu.Unlock()
		fired := false
		select {
		case <-t.kick:
		case <-timer.C:
			fired = true
		}
		t.mu.Lock()
		t.gathering = false
		if fired {
			return
		}
	}
}

// commit builds the batch's records after the head and stores them, and returns the new
// head and how many records it stored. On a conflict with another writer it reloads the
// head and tries again. An entry whose enrollment the store refuses gets the error and a
// zero receipt, and the others are committed without it.
func (l *Log) commit(ctx context.Context, tenant string, t *tenantLog, batch []*pending) (
	store.EvidenceHead, int, error) {
	live := slices.Clone(batch)
	for attempt := 0; ; {
		if !t.loaded {
			h, err := l.cfg.Store.EvidenceHead(ctx, tenant)
			if err != nil {
				return h, 0, fmt.Errorf("evidence: record: %w", err)
			}
			t.head, t.loaded = h, true
		}
		recs := l.build(tenant, t, live)
		err := l.cfg.Store.AppendEvidence(ctx, tenant, t.head, recs)
		var enErr *store.EnrollmentError
		if errors.As(err, &enErr) && enErr.Seq > t.head.Size &&
			enErr.Seq <= t.head.Size+uint64(len(live)) {
			i := int(enErr.Seq - t.head.Size - 1)
			live[i].err = fmt.Errorf("evidence: record %s: %w", live[i].e.Type, enErr.Err)
			live[i].rec = Receipt{}
			live = slices.Delete(live, i, i+1)
			if len(live) == 0 {
				return t.head, 0, nil
			}
			continue
		}
		if errors.Is(err, store.ErrEvidenceConflict) && attempt < 5 {
			attempt++
			t.loaded = false
			l.cfg.Log.Warn("evidence head moved under us; retrying", logkey.Tenant, tenant)
			continue
		}
		if err != nil {
			t.loaded = false
			return t.head, 0, fmt.Errorf("evidence: record: %w", err)
		}
		last := recs[len(recs)-1]
		t.head = store.EvidenceHead{Size: last.Seq, Hash: last.Hash}
		return t.head, len(recs), nil
	}
}

// build numbers and hashes the batch after t.head and fills each pending receipt.
func (l *Log) build(tenant string, t *tenantLog, batch []*pending) []store.EvidenceRecord {
	now := l.cfg.Clock().UTC()
	if now.Before(t.lastTime) {
		now = t.lastTime // record times never go backwards
	}
	t.lastTime = now
	recs := make([]store.EvidenceRecord, len(batch))
	prev := evidence.Hash(t.head.Hash)
	for i, p := range batch {
		r := evidence.Record{Seq: t.head.Size + uint64(i) + 1, Time: now, Tenant: tenant,
			Type: p.e.Type, Actor: evidence.Actor{Kind: string(p.e.Actor.Kind), ID: p.e.Actor.ID},
			Subject: p.e.Subject, Data: p.data, Prev: prev}
		body := r.Body()
		prev = evidence.ChainHash(prev, evidence.LeafHash(body))
		recs[i] = store.EvidenceRecord{Seq: r.Seq, Hash: prev, Body: body,
			Enrollment: p.e.Enrollment}
		p.rec = Receipt{Tenant: tenant, Seq: r.Seq, Hash: prev, Time: now}
	}
	return recs
}
