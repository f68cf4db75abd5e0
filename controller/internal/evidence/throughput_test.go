package evidence

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/wardsec/ward/pkg/evidence"
)

// TestEvidenceThroughput prints the figures make bench reports: appends through the Log
// (hashing, group commit, synced Badger transactions) against raw batched Badger writes
// of the same sizes in the same run, and offline verification of the exported bundle.
// It runs only with WARD_EVIDENCE_BENCH=1 (scripts/bench.sh sets it).
func TestEvidenceThroughput(t *testing.T) {
	if os.Getenv("WARD_EVIDENCE_BENCH") == "" {
		t.Skip("set WARD_EVIDENCE_BENCH=1 (make bench)")
	}
	const (
		writers = 64
		perW    = 800
		total   = writers * perW
		batch   = 256
		rounds  = 3
	)
	e := newEnv(t, 1<<40)
	ctx := context.Background()
	entry := Entry{Tenant: "clinic", Type: TypeCommandResult,
		Actor: Actor{Kind: ActorAgent, ID: "agent-0123456789"}, Subject: "cmd-0001",
		Data: map[string]any{"exit": 0, "output": "service restarted; 3 files changed"}}

	// record size, for the raw writes
	data, _ := evidence.Canonical(entry.Data, nil)
	size := len(evidence.Record{Seq: 1, Time: time.Now(), Tenant: "clinic", Type: entry.Type,
		Actor: evidence.Actor{Kind: "agent", ID: entry.Actor.ID}, Subject: entry.Subject,
		Data: data}.Body()) + 32

	// The machine is shared: measure both in alternating rounds and keep the best of each.
	var rawRate, appendRate float64
	for range rounds {
		// writers per transaction: the largest batch the writers can form
		rawRate = max(rawRate, rawBadger(t, total, writers, size))
		appendRate = max(appendRate, appendRun(t, e.log, entry, writers, perW))
	}
	rawBig := rawBadger(t, total, batch, size)

	var buf bytes.Buffer
	x := &Exporter{Store: e.store, Key: e.key, Checkpointer: e.cp}
	if _, err := x.Export(ctx, &buf, ExportQuery{Tenant: "clinic"}, nil); err != nil {
		t.Fatal(err)
	}
	b, err := evidence.ReadBundle(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var verifyRate float64
	for range 3 { // best of three: the machine is shared
		start := time.Now()
		rep, err := b.Verify(evidence.VerifyOptions{Roots: e.ca.Roots()})
		if err != nil {
			t.Fatal(err)
		}
		verifyRate = max(verifyRate, float64(rep.Records)/time.Since(start).Seconds())
	}

	fmt.Printf("evidence append (%d writers, %d B records):  %9.0f records/s\n", writers,
		size, appendRate)
	fmt.Printf("raw batched Badger writes (%d per txn, synced): %9.0f records/s\n", writers,
		rawRate)
	fmt.Printf("raw batched Badger writes (%d per txn, synced): %9.0f records/s\n", batch,
		rawBig)
	fmt.Printf("append / raw: %.3f (target >= 0.5) %s\n", appendRate/rawRate,
		verdict(appendRate/rawRate >= 0.5))
	fmt.Printf("evidence verify (%d records): %9.0f records/s (target >= 500000) %s\n", rounds*total,
		verifyRate, verdict(verifyRate >= 500000))
}

// appendRun records writers*perW entries from writers goroutines and returns records per
// second.
func appendRun(t *testing.T, log *Log, entry Entry, writers, perW int) float64 {
	var wg sync.WaitGroup
	var failed atomic.Int64
	ctx := context.Background()
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perW {
				if _, err := log.Record(ctx, entry); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d appends failed", failed.Load())
	}
	return float64(writers*perW) / time.Since(start).Seconds()
}

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "NOT MET"
}

// rawBadger writes n values of size bytes in synced transactions of batch each, with the
// store's options, and returns values per second.
func rawBadger(t *testing.T, n, batch, size int) float64 {
	opts := badgerdb.DefaultOptions(t.TempDir()).WithSyncWrites(true).WithLogger(nil).
		WithMemTableSize(16 << 20).WithBaseTableSize(8 << 20).WithBlockCacheSize(32 << 20).
		WithCompression(options.None).WithValueLogFileSize(256 << 20).WithNumCompactors(2)
	db, err := badgerdb.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	val := bytes.Repeat([]byte("x"), size)
	start := time.Now()
	for i := 0; i < n; i += batch {
		err := db.Update(func(txn *badgerdb.Txn) error {
			for j := i; j < min(i+batch, n); j++ {
				if err := txn.Set(fmt.Appendf(nil, "tenant:clinic:ev:rec:%020d", j), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}
