package badger

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func open(t testing.TB, dir string, o Options) *Store {
	t.Helper()
	o.Dir, o.Log = dir, testLog(t)
	s, err := OpenOptions(o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) store.Store {
			s := open(t, t.TempDir(), Options{})
			t.Cleanup(func() { s.Close() })
			return s
		},
		Reopen: func(t *testing.T, old store.Store) store.Store {
			dir := old.(*Store).db.Opts().Dir
			if err := old.Close(); err != nil {
				t.Fatal(err)
			}
			s := open(t, dir, Options{})
			t.Cleanup(func() { s.Close() })
			return s
		},
	})
}

func TestHeartbeatsExpire(t *testing.T) {
	s := open(t, t.TempDir(), Options{HeartbeatTTL: time.Second})
	defer s.Close()
	ctx := context.Background()
	if err := s.CreateTenant(ctx, store.Tenant{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAgent(ctx, store.Agent{ID: "ag", Tenant: "a"}); err != nil {
		t.Fatal(err)
	}
	for seq, typ := range []string{"", "heartbeat", "drift_report"} {
		if seq == 0 {
			continue
		}
		m := store.Message{Tenant: "a", Agent: "ag", Seq: uint64(seq), Type: typ}
		if _, err := s.CommitMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	time.Sleep(2100 * time.Millisecond) // Badger's expiry has a resolution of one second

	msgs, err := s.ListMessages(ctx, "a", "ag", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Type != "drift_report" {
		t.Fatalf("after the ttl: %+v, want only the drift report", msgs)
	}
	if a, _ := s.GetAgent(ctx, "ag"); a.AckedSeq != 2 {
		t.Errorf("acked seq = %d; expiry must not lower it", a.AckedSeq)
	}
}

func TestClosedStoreFailsPing(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); err == nil {
		t.Fatal("Ping after Close = nil")
	}
}

// BenchmarkCommitMessage commits heartbeats from parallel agents (one per goroutine), each
// synced to disk; Badger groups concurrent commits into one write and fsync.
func BenchmarkCommitMessage(b *testing.B) {
	s := open(b, b.TempDir(), Options{})
	defer s.Close()
	ctx := context.Background()
	if err := s.CreateTenant(ctx, store.Tenant{ID: "a"}); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	const agents = 256
	for i := range agents {
		a := store.Agent{ID: fmt.Sprintf("ag-%d", i), Tenant: "a"}
		if err := s.CreateAgent(ctx, a); err != nil {
			b.Fatal(err)
		}
	}
	body := make([]byte, 256)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("ag-%d", next.Add(1)%agents)
		var seq uint64
		for pb.Next() {
			seq++
			m := store.Message{Tenant: "a", Agent: id, Seq: seq, Type: "heartbeat", Body: body}
			if _, err := s.CommitMessage(ctx, m); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
