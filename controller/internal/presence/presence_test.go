package presence

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*defaultPolicy[...]).processItems"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*Cache[...]).processItems"),
	)
}

// logBuffer keeps log lines for checks and copies them to t.Log.
type logBuffer struct {
	mu  sync.Mutex
	t   *testing.T
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.t.Log(strings.TrimSpace(string(p)))
	return b.buf.Write(p)
}

func (b *logBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestOfflineAfterThreeMissedIntervalsAndOnlineAgain(t *testing.T) {
	ctx := context.Background()
	st, err := badger.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateTenant(ctx, store.Tenant{ID: "clinic-a"}); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	for _, id := range []string{"quiet", "chatty"} {
		if err := st.CreateAgent(ctx, store.Agent{ID: id, Tenant: "clinic-a"}); err != nil {
			t.Fatal(err)
		}
	}
	seq := map[string]uint64{}
	beat := func(id string) {
		t.Helper()
		seq[id]++
		_, err := st.CommitMessage(ctx, store.Message{Tenant: "clinic-a", Agent: id,
			Seq: seq[id], Type: "heartbeat", ReceivedAt: clock.Now()})
		if err != nil {
			t.Fatal(err)
		}
	}
	online := func(id string) bool {
		t.Helper()
		a, err := st.GetAgent(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return a.Online
	}

	logs := &logBuffer{t: t}
	sw, err := New(Config{Store: st, Interval: 30 * time.Second, Clock: clock.Now,
		Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	beat("quiet")
	beat("chatty")

	// Sweeps every 15 s. Up to three intervals of silence the quiet agent is online.
	for range 6 {
		clock.Advance(15 * time.Second)
		beat("chatty")
		if err := sw.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if !online("quiet") {
			t.Fatalf("quiet agent offline after %v", 15*time.Second)
		}
	}
	clock.Advance(time.Second)
	for range 3 {
		if err := sw.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if online("quiet") {
		t.Fatal("quiet agent still online after three missed intervals")
	}
	if !online("chatty") {
		t.Fatal("chatty agent marked offline")
	}
	if n := logs.count(`msg="agent offline"`); n != 1 {
		t.Fatalf(`"agent offline" logged %d times, want once`, n)
	}

	// Its next message brings it back, and the return is logged once.
	beat("quiet")
	if !online("quiet") {
		t.Fatal("a message did not set the agent online")
	}
	for range 3 {
		if err := sw.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := logs.count(`msg="agent online"`); n != 1 {
		t.Fatalf(`"agent online" logged %d times, want once`, n)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	st, err := badger.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sw, err := New(Config{Store: st, Interval: 20 * time.Millisecond,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := sw.Run(ctx); err != nil {
		t.Fatalf("Run = %v", err)
	}
}
