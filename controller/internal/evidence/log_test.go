package evidence

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wardsec/ward/pkg/evidence"
)

// TestRecordGivenUpCallersNeverStallTheQueue runs writers of which every third gives up
// at once (its context is already done): the queue is handed from caller to caller, a
// caller that gave up is never handed it, every caller that waited gets its record, and
// the log verifies with no hole, whether the abandoned entries landed or not.
func TestRecordGivenUpCallersNeverStallTheQueue(t *testing.T) {
	e := newEnv(t, 1<<40)
	const writers, each = 24, 40
	done, cancel := context.WithCancel(context.Background())
	cancel()

	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[uint64]bool{}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			if w%3 == 0 {
				ctx = done
			}
			for range each {
				rec, err := e.log.Record(ctx, Entry{Tenant: "clinic", Type: TypeCheckChanged,
					Actor: Actor{Kind: ActorAgent, ID: "a1"}, Subject: "a1/ssh"})
				if ctx == done {
					continue // recorded or not: never acknowledged
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if got[rec.Seq] {
					t.Errorf("seq %d returned twice", rec.Seq)
				}
				got[rec.Seq] = true
				mu.Unlock()
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		t.Fatal("writers stalled")
	}

	// whatever was left queued by callers that gave up is committed by the next caller
	if _, err := e.log.Record(context.Background(), Entry{Tenant: "clinic",
		Type: TypeCheckChanged, Actor: Actor{Kind: ActorAgent, ID: "a1"}}); err != nil {
		t.Fatal(err)
	}
	b, _ := e.export(t, ExportQuery{Tenant: "clinic"})
	rep, err := b.Verify(evidence.VerifyOptions{Roots: e.ca.Roots()})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if want := writers * each * 2 / 3; len(got) != want || rep.Records < want+1 {
		t.Errorf("acknowledged %d (want %d), log holds %d", len(got), want, rep.Records)
	}
}
