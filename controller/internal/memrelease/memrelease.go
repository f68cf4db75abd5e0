// Package memrelease hands heap memory the controller no longer uses back to the operating
// system soon after a burst of work.
//
// A controller's resident set is mostly per-agent connection state, and its bursts are
// large: after a restart every agent reconnects at once, and each TLS handshake leaves
// garbage behind. The Go runtime returns freed heap memory to the system only gradually,
// so for minutes after such a burst the process holds far more than it uses. A Releaser
// watches the free heap and, when it is both large and a large share of what is in use,
// collects garbage and returns every free page at once (debug.FreeOSMemory).
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
	DefaultInterval     = time.Second
	DefaultMinFree      = 64 << 20
	DefaultFreeFraction = 0.5
	DefaultCooldown     = 5 * time.Second
)

// Config tunes a Releaser. Zero fields take the defaults.
type Config struct {
	// Interval is how often the free heap is read (a cheap read, no collection).
	Interval time.Duration
	// MinFree is the free heap, in bytes, below which nothing is released.
	MinFree uint64
	// FreeFraction is the share of the heap in use that the free heap must also exceed,
	// so that a steady workload, whose free heap stays a fraction of its live heap, is
	// left to the runtime.
	FreeFraction float64
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
	if c.FreeFraction <= 0 {
		c.FreeFraction = DefaultFreeFraction
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
}

const (
	metricFree  = "/memory/classes/heap/free:bytes"
	metricInUse = "/memory/classes/heap/objects:bytes"
)

// Read reads the heap without stopping the world.
func Read() Heap {
	s := []metrics.Sample{{Name: metricFree}, {Name: metricInUse}}
	metrics.Read(s)
	var h Heap
	if s[0].Value.Kind() == metrics.KindUint64 {
		h.Free = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		h.InUse = s[1].Value.Uint64()
	}
	return h
}

// Due reports whether h holds enough free memory to release under cfg.
func (c Config) Due(h Heap) bool {
	c.defaults()
	return h.Free >= c.MinFree && float64(h.Free) >= c.FreeFraction*float64(h.InUse)
}

// Run watches the heap until ctx ends, releasing free memory whenever it is due and the
// cooldown has passed since the last release.
func Run(ctx context.Context, cfg Config) {
	cfg.defaults()
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(last) < cfg.Cooldown {
			continue
		}
		before := Read()
		if !cfg.Due(before) {
			continue
		}
		start := time.Now()
		debug.FreeOSMemory()
		last = time.Now()
		after := Read()
		cfg.Log.Debug("heap memory released", "free_before_bytes", before.Free,
			"free_after_bytes", after.Free, "in_use_bytes", after.InUse,
			"duration", last.Sub(start).Round(time.Millisecond))
	}
}
