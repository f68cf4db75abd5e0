// Package memrelease hands heap memory the controller no longer uses back to the operating
// system soon after a burst of work.
//
// A controller's resident set is mostly per-agent connection state, and its bursts are
// large: after a restart every agent reconnects at once, and each TLS handshake leaves
// garbage behind. The Go runtime collects garbage only as the heap grows, which an idle
// controller's hardly does, and returns freed memory only gradually, down to a margin
// above its next collection goal; an idle fleet of 10,000 agents would keep about 100 MiB
// it does not use. Run watches the heap and, once the process has allocated less over the
// last two seconds than a collection could return (it is idle, and would not reuse that
// memory soon), collects and returns every free page at once (debug.FreeOSMemory). A busy
// controller allocates far more than that every second, so it is left to the runtime.
package memrelease

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Defaults of Config.
const (
	DefaultInterval   = time.Second
	DefaultMinFree    = 16 << 20
	DefaultIdleWindow = 2 * time.Second
	DefaultCooldown   = 2 * time.Second
)

// Config tunes Run. Zero fields take the defaults.
type Config struct {
	// Interval is how often the heap is read (a cheap read, no collection).
	Interval time.Duration
	// MinFree is the reclaimable heap (Heap.Reclaimable), in bytes, below which nothing
	// is released.
	MinFree uint64
	// IdleWindow is how far back allocations are counted: a reclaimable heap larger than
	// what was allocated in that time is released.
	IdleWindow time.Duration
	// Cooldown is the least time between two releases.
	Cooldown time.Duration
	// Log receives one debug line per release; nil discards.
	Log *slog.Logger
}

func (c *Config) defaults() {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.MinFree == 0 {
		c.MinFree = DefaultMinFree
	}
	if c.IdleWindow <= 0 {
		c.IdleWindow = DefaultIdleWindow
	}
	if c.Cooldown <= 0 {
		c.Cooldown = DefaultCooldown
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Heap is a reading of the heap, in bytes.
type Heap struct {
	// Free is heap memory that is free and still held from the operating system.
	Free uint64
	// InUse is memory occupied by heap objects, live or not yet collected.
	InUse uint64
	// Live is the heap that the last collection found live.
	Live uint64
	// Allocated counts every byte allocated on the heap since the process started.
	Allocated uint64
}

// Reclaimable is what a collection followed by a release could return at most: the free
// heap, and what was allocated since the last collection (part of it garbage).
func (h Heap) Reclaimable() uint64 {
	return h.Free + h.InUse - min(h.Live, h.InUse)
}

const (
	metricFree   = "/memory/classes/heap/free:bytes"
	metricInUse  = "/memory/classes/heap/objects:bytes"
	metricLive   = "/gc/heap/live:bytes"
	metricAllocs = "/gc/heap/allocs:bytes"
)

// Read reads the heap without stopping the world.
func Read() Heap {
	s := []metrics.Sample{{Name: metricFree}, {Name: metricInUse}, {Name: metricLive},
		{Name: metricAllocs}}
	metrics.Read(s)
	var v [4]uint64
	for i := range s {
		if s[i].Value.Kind() == metrics.KindUint64 {
			v[i] = s[i].Value.Uint64()
		}
	}
	return Heap{Free: v[0], InUse: v[1], Live: v[2], Allocated: v[3]}
}

// Due reports whether h holds enough memory to release under cfg, given the bytes the
// process allocated over the last IdleWindow: a reclaimable heap (Heap.Reclaimable) of at
// least MinFree and an eighth of the live heap, and more than what was allocated. The
// eighth bounds how often a large idle heap is collected for the little garbage that
// background work (the presence sweep, metrics) leaves.
func (c Config) Due(h Heap, recent uint64) bool {
	c.defaults()
	r := h.Reclaimable()
	return r >= max(c.MinFree, h.Live/8) && recent < r
}

// Run watches the heap until ctx ends, releasing free memory whenever it is due and the
// cooldown has passed since the last release.
func Run(ctx context.Context, cfg Config) {
	cfg.defaults()
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()

	// allocs[i] is the allocation count i readings ago, over one IdleWindow
	allocs := make([]uint64, max(1, int(cfg.IdleWindow/cfg.Interval))+1)
	seen := 0
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		before := Read()
		copy(allocs[1:], allocs)
		allocs[0] = before.Allocated
		seen = min(seen+1, len(allocs))
		if seen < len(allocs) || time.Since(last) < cfg.Cooldown {
			continue // a full window is not yet known, or released just now
		}
		recent := before.Allocated - allocs[len(allocs)-1]
		if !cfg.Due(before, recent) {
			continue
		}
		start := time.Now()
		debug.FreeOSMemory()
		last = time.Now()
		after := Read()
		cfg.Log.Debug("heap memory released", "free_before_bytes", before.Free,
			"free_after_bytes", after.Free, "in_use_bytes", after.InUse,
			"allocated_recently_bytes", recent,
			"duration", last.Sub(start).Round(time.Millisecond))
	}
}
