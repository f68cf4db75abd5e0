package loadgen

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Latencies collects durations from many goroutines. The zero value is ready to use; it is
// safe for concurrent use.
type Latencies struct {
	mu      sync.Mutex // guards samples
	samples []time.Duration
}

// Add records one duration.
func (l *Latencies) Add(d time.Duration) {
	l.mu.Lock()
	l.samples = append(l.samples, d)
	l.mu.Unlock()
}

// AddAll records several durations at once.
func (l *Latencies) AddAll(ds []time.Duration) {
	l.mu.Lock()
	l.samples = append(l.samples, ds...)
	l.mu.Unlock()
}

// Summary returns the count and percentiles of what was recorded so far.
func (l *Latencies) Summary() Summary {
	l.mu.Lock()
	sorted := slices.Clone(l.samples)
	l.mu.Unlock()

	slices.Sort(sorted)
	return Summary{
		Count: len(sorted),
		P50:   Percentile(sorted, 50),
		P99:   Percentile(sorted, 99),
		Max:   Percentile(sorted, 100),
	}
}

// Summary describes a set of latencies. Zero durations when Count is zero.
type Summary struct {
	Count         int
	P50, P99, Max time.Duration
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the nearest-rank method:
// the smallest sample such that at least p percent of the samples are less or equal. It
// returns zero for an empty slice. sorted must be in ascending order.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}

	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}
