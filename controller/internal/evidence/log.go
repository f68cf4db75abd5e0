package evidence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
// to disk, the next ones queue, and the caller whose commit finishes takes the queue.
// Log is safe for concurrent use.
type Log struct {
	cfg Config

	mu      sync.Mutex // guards tenants
	tenants map[string]*tenantLog
}

var _ Recorder = (*Log)(nil)

// tenantLog is one tenant's queue and cached head.
type tenantLog struct {
	mu       sync.Mutex // guards the fields below
	head     store.EvidenceHead
	lastTime time.Time
	loaded   bool // head is known
	pending  []*pending
	flushing bool // some caller is committing
}

// pending is an entry waiting for its commit.
type pending struct {
	e    Entry
	data []byte // canonical, scrubbed
	done chan struct{}
	rec  Receipt
	err  error
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
	data, err := evidence.Canonical(e.Data, l.cfg.Scrubber.Text)
	if err != nil {
		return Receipt{}, fmt.Errorf("evidence: record %s: %w", e.Type, err)
	}
	e.Subject = l.cfg.Scrubber.Text(e.Subject)
	p := &pending{e: e, data: data, done: make(chan struct{})}

	t := l.tenant(e.Tenant)
	t.mu.Lock()
	t.pending = append(t.pending, p)
	lead := !t.flushing
	t.flushing = true
	t.mu.Unlock()
	if lead {
		l.flush(ctx, e.Tenant, t)
	}

	select {
	case <-p.done:
		return p.rec, p.err
	case <-ctx.Done():
		// it may still be committed: recorded but not acknowledged, never the reverse
		return Receipt{}, ctx.Err()
	}
}

func (l *Log) tenant(id string) *tenantLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.tenants[id]
	if !ok {
		t = &tenantLog{}
		l.tenants[id] = t
	}
	return t
}

// flush commits the queue batch by batch until it is empty.
func (l *Log) flush(ctx context.Context, tenant string, t *tenantLog) {
	ctx = context.WithoutCancel(ctx) // others wait on this commit too
	for {
		t.mu.Lock()
		n := min(len(t.pending), l.cfg.MaxBatch)
		if n == 0 {
			t.flushing = false
			t.mu.Unlock()
			return
		}
		batch := t.pending[:n:n]
		t.pending = t.pending[n:]
		t.mu.Unlock()

		head, err := l.commit(ctx, tenant, t, batch)
		for _, p := range batch {
			if err != nil {
				p.err = err
			}
			close(p.done)
		}
		if err == nil && l.cfg.Appended != nil {
			l.cfg.Appended(tenant, head)
		}
	}
}

// commit builds the batch's records after the head and stores them; on a conflict with
// another writer it reloads the head and tries again.
func (l *Log) commit(ctx context.Context, tenant string, t *tenantLog, batch []*pending) (
	store.EvidenceHead, error) {
	for attempt := 0; ; attempt++ {
		if !t.loaded {
			h, err := l.cfg.Store.EvidenceHead(ctx, tenant)
			if err != nil {
				return h, fmt.Errorf("evidence: record: %w", err)
			}
			t.head, t.loaded = h, true
		}
		recs := l.build(tenant, t, batch)
		err := l.cfg.Store.AppendEvidence(ctx, tenant, t.head, recs)
		if errors.Is(err, store.ErrEvidenceConflict) && attempt < 5 {
			t.loaded = false
			l.cfg.Log.Warn("evidence head moved under us; retrying", logkey.Tenant, tenant)
			continue
		}
		if err != nil {
			t.loaded = false
			return t.head, fmt.Errorf("evidence: record: %w", err)
		}
		last := recs[len(recs)-1]
		t.head = store.EvidenceHead{Size: last.Seq, Hash: last.Hash}
		return t.head, nil
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
		recs[i] = store.EvidenceRecord{Seq: r.Seq, Hash: prev, Body: body}
		p.rec = Receipt{Tenant: tenant, Seq: r.Seq, Hash: prev, Time: now}
	}
	return recs
}
