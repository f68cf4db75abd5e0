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
)

// Checkpoint defaults.
const (
	DefaultCheckpointEvery    = 1000             // records
	DefaultCheckpointInterval = 60 * time.Second // at most this long unsigned
)

// CheckpointerConfig configures a Checkpointer.
type CheckpointerConfig struct {
	Store   store.Evidence // required
	Tenants store.Tenants  // required: the logs to look at on each tick
	Key     *Key           // required: signs the checkpoints
	// Recorder, when not nil, gets a TypeCheckpoint record after each checkpoint.
	Recorder Recorder
	// Every is how many records trigger a checkpoint; zero means the default.
	Every uint64
	// Interval is how often every log gets a checkpoint if its head moved; zero means the
	// default.
	Interval time.Duration
	// Published, when not nil, is called with each new checkpoint (to send it to the
	// tenant's witnesses). It must not block for long.
	Published func(cp store.EvidenceCheckpoint)
	Log       *slog.Logger     // nil discards
	Clock     func() time.Time // nil means time.Now
}

// Checkpointer signs the head of each tenant's log every Every records or Interval,
// whichever comes first. Its methods are safe for concurrent use; Run runs once.
type Checkpointer struct {
	cfg  CheckpointerConfig
	kick chan string // tenants whose head passed Every records

	cpMu sync.Mutex // serializes Checkpoint

	mu   sync.Mutex                    // guards last; never held while recording
	last map[string]store.EvidenceHead // newest checkpointed head per tenant
}

// NewCheckpointer returns a Checkpointer. It panics when a required field is missing.
func NewCheckpointer(cfg CheckpointerConfig) *Checkpointer {
	if cfg.Store == nil || cfg.Tenants == nil || cfg.Key == nil {
		panic("evidence: NewCheckpointer: Store, Tenants and Key are required")
	}
	if cfg.Every == 0 {
		cfg.Every = DefaultCheckpointEvery
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultCheckpointInterval
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Checkpointer{cfg: cfg, kick: make(chan string, 64),
		last: map[string]store.EvidenceHead{}}
}

// Appended is the Log's Config.Appended hook: it asks Run for a checkpoint when the head
// has passed Every records since the last one. It never blocks.
func (c *Checkpointer) Appended(tenant string, head store.EvidenceHead) {
	c.mu.Lock()
	last, known := c.last[tenant]
	c.mu.Unlock()
	if known && head.Size < last.Size+c.cfg.Every {
		return
	}
	select {
	case c.kick <- tenant:
	default: // a tick will catch it
	}
}

// Run checkpoints until ctx ends; it returns nil then.
func (c *Checkpointer) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	c.all(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case tenant := <-c.kick:
			c.logged(ctx, tenant)
		case <-t.C:
			c.all(ctx)
		}
	}
}

func (c *Checkpointer) all(ctx context.Context) {
	tenants, err := c.cfg.Tenants.ListTenants(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.cfg.Log.Warn("evidence checkpoints: list tenants", logkey.Error, err)
		}
		return
	}
	for _, t := range tenants {
		c.logged(ctx, t.ID)
	}
}

func (c *Checkpointer) logged(ctx context.Context, tenant string) {
	if _, err := c.Checkpoint(ctx, tenant); err != nil && ctx.Err() == nil {
		c.cfg.Log.Warn("evidence checkpoint", logkey.Tenant, tenant, logkey.Error, err)
	}
}

// Checkpoint signs the tenant's current head unless it is already checkpointed, or all
// that follows the last checkpoint is that checkpoint's own record. It returns the
// newest checkpoint (the zero value when the log is empty).
func (c *Checkpointer) Checkpoint(ctx context.Context, tenant string) (
	store.EvidenceCheckpoint, error) {
	c.cpMu.Lock()
	defer c.cpMu.Unlock()

	newest, err := c.newest(ctx, tenant)
	if err != nil {
		return newest, err
	}
	head, err := c.cfg.Store.EvidenceHead(ctx, tenant)
	if err != nil {
		return newest, fmt.Errorf("checkpoint %s: %w", tenant, err)
	}
	if head.Size == 0 || head.Size == newest.Size {
		return newest, nil
	}
	if head.Size == newest.Size+1 && c.onlyCheckpointRecord(ctx, tenant, head.Size) {
		return newest, nil
	}

	cp := evidence.Checkpoint{Tenant: tenant, Size: head.Size, Head: head.Hash,
		Time: c.cfg.Clock().UTC()}
	sig, err := evidence.Sign(c.cfg.Key.Signer, cp.Text())
	if err != nil {
		return newest, err
	}
	stored := store.EvidenceCheckpoint{Tenant: tenant, Size: cp.Size, Head: cp.Head,
		Time: cp.Time, Signature: sig}
	if err := c.cfg.Store.PutCheckpoint(ctx, stored); err != nil &&
		!errors.Is(err, store.ErrExists) {
		return newest, fmt.Errorf("checkpoint %s: %w", tenant, err)
	}
	c.setLast(tenant, head)
	c.cfg.Log.Debug("evidence checkpoint", logkey.Tenant, tenant, "size", head.Size)

	if c.cfg.Published != nil {
		c.cfg.Published(stored)
	}
	if c.cfg.Recorder != nil {
		_, err := c.cfg.Recorder.Record(ctx, Entry{Tenant: tenant, Type: TypeCheckpoint,
			Actor:   Actor{Kind: ActorController, ID: KeyName},
			Subject: tenant,
			Data: map[string]any{"size": cp.Size, "head": cp.Head.String(),
				"time": cp.Time, "key_fingerprint": c.cfg.Key.Fingerprint}})
		if err != nil {
			return stored, fmt.Errorf("checkpoint %s: record: %w", tenant, err)
		}
	}
	return stored, nil
}

func (c *Checkpointer) setLast(tenant string, h store.EvidenceHead) {
	c.mu.Lock()
	c.last[tenant] = h
	c.mu.Unlock()
}

// newest returns the newest stored checkpoint of tenant (zero when none).
func (c *Checkpointer) newest(ctx context.Context, tenant string) (
	store.EvidenceCheckpoint, error) {
	c.mu.Lock()
	after := c.last[tenant].Size
	c.mu.Unlock()
	cps, err := c.cfg.Store.ListCheckpoints(ctx, tenant, after)
	if err != nil {
		return store.EvidenceCheckpoint{}, fmt.Errorf("checkpoint %s: %w", tenant, err)
	}
	if len(cps) == 0 {
		if after == 0 {
			return store.EvidenceCheckpoint{}, nil
		}
		cps, err = c.cfg.Store.ListCheckpoints(ctx, tenant, after-1)
		if err != nil || len(cps) == 0 {
			return store.EvidenceCheckpoint{}, fmt.Errorf("checkpoint %s: lost %d: %v",
				tenant, after, err)
		}
	}
	n := cps[len(cps)-1]
	c.setLast(tenant, store.EvidenceHead{Size: n.Size, Hash: n.Head})
	return n, nil
}

// onlyCheckpointRecord reports whether record seq is a checkpoint record.
func (c *Checkpointer) onlyCheckpointRecord(ctx context.Context, tenant string, seq uint64) bool {
	recs, err := c.cfg.Store.ListEvidence(ctx, tenant, seq-1, 1)
	if err != nil || len(recs) != 1 {
		return false
	}
	r, err := evidence.ParseBody(recs[0].Body)
	return err == nil && r.Type == TypeCheckpoint
}

// SetRecorder sets the recorder that gets a TypeCheckpoint record after each checkpoint
// (the Log, which itself calls Appended: hence set after both exist). Call it before Run.
func (c *Checkpointer) SetRecorder(r Recorder) { c.cfg.Recorder = r }
