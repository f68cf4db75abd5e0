package enroll

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// refusalLimiter counts refused enrollments per source and says when a source has used up
// its allowance. It remembers at most max sources: when full it first forgets sources whose
// bucket has refilled (they have nothing to remember), then arbitrary ones, so a flood of
// addresses costs bounded memory. Forgetting a source only gives it a fresh burst.
// It is safe for concurrent use.
type refusalLimiter struct {
	limit rate.Limit
	burst int
	max   int

	mu      sync.Mutex // guards sources
	sources map[netip.Prefix]*rate.Limiter
}

func newRefusalLimiter(limit rate.Limit, burst, max int) *refusalLimiter {
	return &refusalLimiter{
		limit:   limit,
		burst:   burst,
		max:     max,
		sources: make(map[netip.Prefix]*rate.Limiter),
	}
}

// sourceKey groups addresses that one party controls: an IPv4 address on its own, an IPv6
// address by its /64. The zero Addr (unknown source) is one group.
func sourceKey(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap()
	switch {
	case addr.Is4():
		return netip.PrefixFrom(addr, 32)
	case addr.Is6():
		p, _ := addr.Prefix(64) // cannot fail for a valid IPv6 address and 64 bits
		return p
	}
	return netip.Prefix{}
}

// blocked reports whether src has no refusals left at now. It takes nothing.
func (l *refusalLimiter) blocked(src netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()

	lim, ok := l.sources[sourceKey(src)]
	return ok && lim.TokensAt(now) < 1
}

// refused records one refusal of src at now.
func (l *refusalLimiter) refused(src netip.Addr, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()

	key := sourceKey(src)
	lim, ok := l.sources[key]
	if !ok {
		if len(l.sources) >= l.max {
			l.evictLocked(now)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.sources[key] = lim
	}
	lim.AllowN(now, 1)
}

// evictLocked makes room: it drops every source whose bucket is full again and, if that
// frees less than a tenth of the map, arbitrary further sources up to that tenth.
func (l *refusalLimiter) evictLocked(now time.Time) {
	for key, lim := range l.sources {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.sources, key)
		}
	}

	target := l.max - l.max/10 - 1
	for key := range l.sources {
		if len(l.sources) <= target {
			break
		}
		delete(l.sources, key)
	}
}

// size returns the number of sources remembered.
func (l *refusalLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sources)
}
