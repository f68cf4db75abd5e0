package backoff

import (
	"testing"
	"time"
)

func TestNextDoublesUpToMaxWithFullJitter(t *testing.T) {
	top := func() float64 { return 0.999999 }
	b := &Backoff{Min: time.Second, Max: 60 * time.Second, Rand: top}

	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for i, w := range want {
		got := b.Next()
		if got > w*time.Second || got < w*time.Second*99/100 {
			t.Errorf("attempt %d: Next = %v, want just under %v", i, got, w*time.Second)
		}
	}

	b.Reset()
	if got := b.Next(); got > time.Second {
		t.Errorf("after Reset: Next = %v, want at most 1s", got)
	}
}

func TestJitterSpreadsDelays(t *testing.T) {
	b := &Backoff{Min: time.Second, Max: time.Minute}
	seen := map[time.Duration]bool{}
	for range 50 {
		b.Reset()
		for range 6 {
			b.Next()
		}
		d := b.Next()
		if d < 0 || d > time.Minute {
			t.Fatalf("delay %v out of [0, 1m]", d)
		}
		seen[d] = true
	}
	if len(seen) < 40 {
		t.Errorf("only %d distinct delays out of 50: jitter missing", len(seen))
	}
}

func TestSlowStaysNearMax(t *testing.T) {
	tests := []struct {
		name string
		r    float64
		want time.Duration
	}{
		{"low", 0, 30 * time.Second},
		{"high", 0.999999, 60 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Backoff{Min: time.Second, Max: time.Minute,
				Rand: func() float64 { return tt.r }}
			got := b.Slow()
			if got < tt.want-time.Millisecond || got > tt.want {
				t.Errorf("Slow = %v, want about %v", got, tt.want)
			}
			if b.Attempts() != 0 {
				t.Errorf("Slow counted an attempt")
			}
		})
	}
}
