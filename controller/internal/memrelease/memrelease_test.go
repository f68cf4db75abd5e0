package memrelease

import (
	"context"
	"runtime"
	"testing"
	"time"
)

func TestDue(t *testing.T) {
	cfg := Config{MinFree: 100, FreeFraction: 0.5}
	tests := []struct {
		name string
		h    Heap
		want bool
	}{
		{"nothing free", Heap{Free: 0, InUse: 1000}, false},
		{"below the floor", Heap{Free: 99, InUse: 10}, false},
		{"small share of a large heap", Heap{Free: 400, InUse: 1000}, false},
		{"half of the heap", Heap{Free: 500, InUse: 1000}, true},
		{"more free than used", Heap{Free: 5000, InUse: 1000}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cfg.Due(tt.h); got != tt.want {
				t.Errorf("Due(%+v) = %v, want %v", tt.h, got, tt.want)
			}
		})
	}
}

// sink keeps the allocations of makeGarbage reachable until it drops them.
var sink [][]byte

// makeGarbage allocates n bytes in small objects, drops them and collects, so that the
// runtime holds them as free heap.
func makeGarbage(n int) {
	for range n / 4096 {
		sink = append(sink, make([]byte, 4096))
	}
	sink = nil
	runtime.GC()
}

func TestRunReleasesAfterABurst(t *testing.T) {
	const burst = 256 << 20
	makeGarbage(burst)
	if h := Read(); h.Free < burst/2 {
		t.Skipf("the runtime already returned the burst (free %d bytes)", h.Free)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Config{Interval: 50 * time.Millisecond, MinFree: 32 << 20})
	}()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(20 * time.Second)
	for {
		h := Read()
		if h.Free < 32<<20 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("free heap still %d bytes after the burst", h.Free)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRunLeavesASmallHeapAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	before := runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gcs := ms.NumForcedGC
	Run(ctx, Config{Interval: 10 * time.Millisecond, MinFree: 1 << 40})
	runtime.ReadMemStats(&ms)
	if ms.NumForcedGC != gcs {
		t.Errorf("forced %d collections below the floor", ms.NumForcedGC-gcs)
	}
	if runtime.NumGoroutine() > before {
		t.Errorf("goroutines %d after Run, %d before", runtime.NumGoroutine(), before)
	}
}
