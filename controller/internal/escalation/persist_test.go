package escalation

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
)

// lateReceiver is a real HTTP receiver on loopback that answers 503 until it is opened,
// then checks the signature like receiver.
type lateReceiver struct {
	inner *receiver

	mu   sync.Mutex
	open bool
	shut int // requests answered 503
}

func (l *lateReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	open := l.open
	if !open {
		l.shut++
	}
	l.mu.Unlock()
	if !open {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	l.inner.ServeHTTP(w, r)
}

func (l *lateReceiver) refused() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.shut
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPendingDeliveriesSurviveARestart: an escalation the receiver does not take before
// the controller stops is kept in the real store with its attempts, and the next
// controller (a new Notifier on the reopened store) delivers it, with the same delivery
// id, once the receiver answers; then nothing is left pending.
func TestPendingDeliveriesSurviveARestart(t *testing.T) {
	rcv := &lateReceiver{inner: &receiver{t: t}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), "db")
	log := slog.New(slog.NewTextHandler(tWriter{t}, nil))
	notifier := func(st store.Escalations) *Notifier {
		n, err := New(Config{URL: srv.URL, Secret: secret, Store: st, Attempts: 20,
			InitialBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond,
			Log: log})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	st, err := badger.Open(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	first := notifier(st)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- first.Run(ctx) }()
	if err := first.Escalate(ctx, escalationFor()); err != nil {
		t.Fatal(err)
	}
	// the receiver's count runs ahead of the store: wait until the second attempt is
	// recorded, or stopping could cut its record short
	waitUntil(t, "two refused attempts recorded", func() bool {
		kept, err := st.ListEscalations(context.Background())
		return rcv.refused() >= 2 && err == nil && len(kept) == 1 && kept[0].Attempts >= 2
	})
	stop()
	<-done
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, err = badger.Open(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kept, err := st.ListEscalations(context.Background())
	if err != nil || len(kept) != 1 {
		t.Fatalf("after a restart %d escalations pending (%v), want 1", len(kept), err)
	}
	p := kept[0]
	if p.Incident != "inc-1" || p.Attempts < 2 || !strings.Contains(p.LastError, "503") ||
		strings.Contains(p.LastError, srv.URL) {
		t.Fatalf("kept %+v; want inc-1 with its attempts and the 503, without the URL", p)
	}

	rcv.mu.Lock()
	rcv.open = true
	rcv.mu.Unlock()
	second := notifier(st)
	ctx, stop = context.WithCancel(context.Background())
	defer stop()
	go func() { done <- second.Run(ctx) }()
	waitUntil(t, "the delivery after the restart", func() bool {
		rcv.inner.mu.Lock()
		defer rcv.inner.mu.Unlock()
		return len(rcv.inner.docs) == 1
	})
	waitUntil(t, "the delivered escalation to leave the store", func() bool {
		left, err := st.ListEscalations(context.Background())
		return err == nil && len(left) == 0
	})
	stop()
	<-done

	rcv.inner.mu.Lock()
	defer rcv.inner.mu.Unlock()
	if rcv.inner.badSig != 0 || rcv.inner.docs[0].DeliveryID != p.ID ||
		rcv.inner.ids[0] != p.ID || rcv.inner.docs[0].Incident.ID != "inc-1" {
		t.Fatalf("delivered %+v with header %v (bad signatures %d), want delivery %s",
			rcv.inner.docs[0], rcv.inner.ids, rcv.inner.badSig, p.ID)
	}
}

// TestEscalateFailsWhenTheStoreCannotKeepIt: an escalation that cannot be kept is an
// error for the engine, not a silent drop; one that runs out of attempts leaves the store.
func TestEscalateFailsWhenTheStoreCannotKeepIt(t *testing.T) {
	rcv := &lateReceiver{inner: &receiver{t: t}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	log := slog.New(slog.NewTextHandler(tWriter{t}, nil))
	st, err := badger.Open(filepath.Join(t.TempDir(), "db"), log)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{URL: srv.URL, Secret: secret, Store: st, Attempts: 2,
		InitialBackoff: 10 * time.Millisecond, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()
	if err := n.Escalate(ctx, escalationFor()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the attempts to run out", func() bool {
		left, _ := st.ListEscalations(context.Background())
		return rcv.refused() == 2 && len(left) == 0
	})
	stop()
	<-done

	st.Close()
	if err := n.Escalate(context.Background(), escalationFor()); err == nil ||
		!strings.Contains(err.Error(), "keep for delivery") {
		t.Fatalf("Escalate on a closed store = %v, want an error", err)
	}
}
