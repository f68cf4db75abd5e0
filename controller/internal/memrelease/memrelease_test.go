package memrelease

import (
	"context"
	"runtime"
	"testing"
	"time"
)

func TestDue(t *testing.T) {
	cfg := Config{MinFree: 100}
	tests := []struct {
		name   string
		h      Heap
		recent uint64 // allocated over the last window
		want   bool
	}{
		{"nothing free", Heap{Free: 0, InUse: 1000, Live: 1000}, 0, false},
		{"below the floor, idle", Heap{Free: 99, InUse: 10, Live: 10}, 0, false},
		{"small share of a busy heap", Heap{Free: 400, InUse: 1000, Live: 1000}, 5000, false},
		{"small share of an idle heap", Heap{Free: 400, InUse: 1000, Live: 1000}, 399, true},
		{"allocated as much as is free", Heap{Free: 400, InUse: 1000, Live: 1000}, 400, false},
		{"much free, busier still", Heap{Free: 5000, InUse: 1000, Live: 1000}, 1 << 30, false},
		{"uncollected garbage, idle", Heap{Free: 10, InUse: 1000, Live: 600}, 100, true},
		{"uncollected garbage, busy", Heap{Free: 10, InUse: 1000, Live: 600}, 500, false},
		{"live above in use", Heap{Free: 10, InUse: 1000, Live: 2000}, 0, false},
		{"little of a large heap", Heap{Free: 120, InUse: 8000, Live: 8000}, 0, false},
		{"an eighth of a large heap", Heap{Free: 1000, InUse: 8000, Live: 8000}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cfg.Due(tt.h, tt.recent); got != tt.want {
				t.Errorf("Due(%+v, %d) = %v, want %v", tt.h, tt.recent, got, tt.want)
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

// live keeps a large heap in use for TestRunReleasesWhenIdle.
var live [][]byte

// TestRunReleasesWhenIdle releases a free heap that is a small share of a large live one
// (a fleet of idle agents after their connections' garbage was collected) once nothing
// has been allocated for a window.
func TestRunReleasesWhenIdle(t *testing.T) {
	for range (512 << 20) / 4096 {
		live = append(live, make([]byte, 4096))
	}
	defer func() { live = nil }()
	const garbage = 96 << 20
	makeGarbage(garbage)
	h := Read()
	if h.Free < garbage/2 {
		t.Skipf("the runtime already returned the garbage (free %d bytes)", h.Free)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Config{Interval: 50 * time.Millisecond, IdleWindow: 200 * time.Millisecond,
			MinFree: 32 << 20})
	}()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(20 * time.Second)
	for Read().Free >= 32<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("free heap still %d bytes while idle", Read().Free)
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
