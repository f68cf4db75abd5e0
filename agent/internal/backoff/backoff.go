// Package backoff computes reconnect delays: capped exponential backoff with full jitter,
// so that agents a controller restart disconnected do not all come back in the same second.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff yields the delays before successive attempts. The zero value is not usable; set
// Min and Max. A Backoff is not safe for concurrent use.
type Backoff struct {
	Min  time.Duration  // ceiling of the first delay; doubles at each attempt
	Max  time.Duration  // cap of the ceiling
	Rand func() float64 // uniform in [0, 1); nil means math/rand/v2.Float64
	n    int            // attempts since the last Reset
}

// Next returns the delay before the next attempt: uniform in [0, ceiling], where the ceiling
// is Min doubled once per attempt since the last Reset, capped at Max.
func (b *Backoff) Next() time.Duration {
	ceil := b.Ceiling()
	b.n++
	return time.Duration(b.rand() * float64(ceil))
}

// Ceiling returns the cap the next delay is drawn under, without consuming an attempt.
func (b *Backoff) Ceiling() time.Duration {
	ceil := b.Min
	for i := 0; i < b.n && ceil < b.Max; i++ {
		ceil *= 2
	}
	return min(ceil, b.Max)
}

// Slow returns a delay for a failure that retrying soon cannot fix (the agent was refused):
// uniform in [Max/2, Max]. It does not change the attempt count.
func (b *Backoff) Slow() time.Duration {
	return b.Max/2 + time.Duration(b.rand()*float64(b.Max/2))
}

// Reset starts the sequence over, after a connection that stayed up.
func (b *Backoff) Reset() { b.n = 0 }

// Attempts returns the number of delays handed out since the last Reset.
func (b *Backoff) Attempts() int { return b.n }

func (b *Backoff) rand() float64 {
	if b.Rand != nil {
		return b.Rand()
	}
	return rand.Float64()
}
