package evidence

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
	"github.com/wardsec/ward/pkg/evidence"
	"github.com/wardsec/ward/pkg/scrub"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// env is a real CA, evidence key and Badger store in a temporary directory.
type env struct {
	dir   string
	ca    *ca.CA
	key   *Key
	store *badger.Store
	log   *Log
	cp    *Checkpointer
}

func newEnv(t testing.TB, every uint64) *env {
	t.Helper()
	dir := t.TempDir()
	authority, err := ca.Create(dir, "test.example")
	if err != nil {
		t.Fatal(err)
	}
	key, err := LoadOrCreateKey(dir, authority)
	if err != nil {
		t.Fatal(err)
	}
	st, err := badger.Open(dir+"/db", testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	for _, id := range []string{"clinic", "other"} {
		if err := st.CreateTenant(ctx, store.Tenant{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{dir: dir, ca: authority, key: key, store: st}
	e.cp = NewCheckpointer(CheckpointerConfig{Store: st, Tenants: st, Key: key, Every: every,
		Log: testLog(t)})
	e.log = NewLog(Config{Store: st, Scrubber: scrub.New([]byte("salt")), Log: testLog(t),
		Appended: e.cp.Appended})
	e.cp.cfg.Recorder = e.log
	return e
}

func (e *env) export(t testing.TB, q ExportQuery) (*evidence.Bundle, ExportSummary) {
	t.Helper()
	var buf bytes.Buffer
	x := &Exporter{Store: e.store, Key: e.key, Checkpointer: e.cp}
	sum, err := x.Export(context.Background(), &buf, q, nil)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	b, err := evidence.ReadBundle(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return b, sum
}

func TestRecordConcurrentExportVerify(t *testing.T) {
	e := newEnv(t, 50)
	ctx := context.Background()
	const writers, each = 20, 10
	var wg sync.WaitGroup
	seqs := make(chan uint64, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				rec, err := e.log.Record(ctx, Entry{Tenant: "clinic", Type: TypeTokenCreated,
					Actor:   Actor{Kind: ActorOperator, ID: "admin"},
					Subject: fmt.Sprintf("tok-%d-%d", w, i),
					Data:    map[string]any{"banner": "Patient: John Smith SSN 123-45-6789"}})
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- rec.Seq
			}
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] || s < 1 || s > writers*each {
			t.Errorf("sequence number %d repeated or out of range", s)
		}
		seen[s] = true
	}

	b, sum := e.export(t, ExportQuery{Tenant: "clinic"})
	rep, err := b.Verify(evidence.VerifyOptions{Roots: e.ca.Roots()})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// the export's checkpoint record itself follows the last checkpoint
	if rep.Records < writers*each || rep.Checkpoints < 1 || rep.Unsigned > 1 ||
		sum.Records != rep.Records {
		t.Errorf("report %+v, summary %+v", rep, sum)
	}
	if bytes.Contains(b.Files[evidence.FileRecords], []byte("John")) ||
		bytes.Contains(b.Files[evidence.FileRecords], []byte("123-45-6789")) {
		t.Error("PHI reached the stored records")
	}
	if rep.KeyFingerprint != e.key.Fingerprint {
		t.Errorf("fingerprint %s, key %s", rep.KeyFingerprint, e.key.Fingerprint)
	}
	// another tenant's log is separate
	if recs, _ := e.store.ListEvidence(ctx, "other", 0, 0); len(recs) != 0 {
		t.Errorf("other tenant has %d records", len(recs))
	}
}

func TestExportTimeRange(t *testing.T) {
	e := newEnv(t, 5)
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	e.log.cfg.Clock = func() time.Time { return now }
	ctx := context.Background()
	for i := range 30 {
		now = now.Add(time.Minute)
		if _, err := e.log.Record(ctx, Entry{Tenant: "clinic", Type: TypeAgentRenewed,
			Actor: Actor{Kind: ActorAgent, ID: "a1"}, Subject: "a1",
			Data: map[string]int{"i": i}}); err != nil {
			t.Fatal(err)
		}
		if i%5 == 4 {
			if _, err := e.cp.Checkpoint(ctx, "clinic"); err != nil {
				t.Fatal(err)
			}
		}
	}
	from := time.Date(2026, 3, 1, 0, 10, 0, 0, time.UTC)
	to := time.Date(2026, 3, 1, 0, 14, 0, 0, time.UTC)
	b, sum := e.export(t, ExportQuery{Tenant: "clinic", From: from, To: to})
	rep, err := b.Verify(evidence.VerifyOptions{KeyFingerprint: e.key.Fingerprint})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.FirstTime.Before(from) || sum.FirstSeq == 1 || rep.Unsigned != 0 ||
		rep.Checkpoints == 0 {
		t.Errorf("report %+v, summary %+v", rep, sum)
	}
	t.Logf("range export: records %d..%d, %d checkpoints", rep.FirstSeq, rep.LastSeq,
		rep.Checkpoints)
}

func TestLoadOrCreateKeyIsStable(t *testing.T) {
	dir := t.TempDir()
	authority, err := ca.Create(dir, "test.example")
	if err != nil {
		t.Fatal(err)
	}
	k1, err := LoadOrCreateKey(dir, authority)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKey(dir, authority)
	if err != nil {
		t.Fatal(err)
	}
	if k1.Fingerprint != k2.Fingerprint || !bytes.Equal(k1.ChainPEM, k2.ChainPEM) {
		t.Error("second load made a new key or certificate")
	}
	cert, err := k1.keyCert()
	if err != nil || len(cert.URIs) != 1 ||
		cert.URIs[0].String() != "spiffe://test.example/controller/evidence" {
		t.Errorf("certificate %v, %v", cert, err)
	}
}

// BenchmarkAppend measures Record with concurrent callers against raw batched Badger
// writes of the same sizes.
func BenchmarkAppend(b *testing.B) {
	e := newEnv(b, 1<<40)
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, err := e.log.Record(ctx, Entry{Tenant: "clinic", Type: TypeCommandResult,
				Actor: Actor{Kind: ActorAgent, ID: "a1"}, Subject: "cmd-1",
				Data: map[string]any{"exit": 0, "output": "ok"}})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
