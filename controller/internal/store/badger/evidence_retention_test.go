package badger

import (
	"context"
	"errors"
	"testing"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/wardsec/ward/controller/internal/store"
)

// retentionLog stores records 1 to n of t1 (hash {seq}) with checkpoints at every
// multiple of 10.
func retentionLog(t *testing.T, n uint64) *Store {
	t.Helper()
	ctx := context.Background()
	s := open(t, t.TempDir(), Options{})
	t.Cleanup(func() { s.Close() })
	var recs []store.EvidenceRecord
	for seq := uint64(1); seq <= n; seq++ {
		recs = append(recs, store.EvidenceRecord{Seq: seq, Hash: [32]byte{byte(seq)},
			Body: []byte(`{}`)})
	}
	if err := s.AppendEvidence(ctx, "t1", store.EvidenceHead{}, recs); err != nil {
		t.Fatal(err)
	}
	for size := uint64(10); size <= n; size += 10 {
		cp := store.EvidenceCheckpoint{Tenant: "t1", Size: size, Head: [32]byte{byte(size)},
			Time: time.Unix(int64(size), 0).UTC(), Signature: []byte("sig")}
		if err := s.PutCheckpoint(ctx, cp); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func head(size uint64) store.EvidenceHead {
	return store.EvidenceHead{Size: size, Hash: [32]byte{byte(size)}}
}

// rawRecords counts t1's record keys, hidden or not.
func rawRecords(t *testing.T, s *Store) int {
	t.Helper()
	keys, err := s.recordKeysThrough(context.Background(), "t1", 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// TestPruneEvidenceBounds: a base that is no signed checkpoint of the log (past the
// head, between checkpoints, another head, before the current base) is refused and
// changes nothing.
func TestPruneEvidenceBounds(t *testing.T) {
	ctx := context.Background()
	s := retentionLog(t, 25)
	if err := s.PruneEvidence(ctx, "t1", head(10)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		base store.EvidenceHead
	}{
		{"zero", store.EvidenceHead{}},
		{"past the head", head(30)},
		{"past the newest checkpoint", head(25)},
		{"between checkpoints", head(15)},
		{"another head", store.EvidenceHead{Size: 20, Hash: [32]byte{9}}},
		{"before the base", head(5)},
		{"the base with another head", store.EvidenceHead{Size: 10, Hash: [32]byte{7}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.PruneEvidence(ctx, "t1", tt.base); err == nil {
				t.Fatal("PruneEvidence succeeded")
			}
			if b, _ := s.EvidenceBase(ctx, "t1"); b != head(10) {
				t.Errorf("base %+v", b)
			}
			if n := rawRecords(t, s); n != 15 {
				t.Errorf("%d records stored, want 15", n)
			}
		})
	}
	if err := s.PruneEvidence(ctx, "t1", head(20)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ListEvidence(ctx, "t1", 0, 0); len(got) != 5 || got[0].Seq != 21 {
		t.Errorf("after the prune to 20: %d records from %+v", len(got), got)
	}
}

// TestPruneEvidenceCutShort: with only the base stored (the first half of a prune),
// readers see no record up to it; calling again with the same base deletes them.
func TestPruneEvidenceCutShort(t *testing.T) {
	ctx := context.Background()
	s := retentionLog(t, 25)
	err := s.update(ctx, func(txn *badgerdb.Txn) error { return setBase(txn, "t1", head(20)) })
	if err != nil {
		t.Fatal(err)
	}
	if n := rawRecords(t, s); n != 25 {
		t.Fatalf("%d records stored, want 25", n)
	}
	if got, _ := s.ListEvidence(ctx, "t1", 3, 0); len(got) != 5 || got[0].Seq != 21 {
		t.Errorf("readers during the prune: %d records from %+v", len(got), got)
	}
	if err := s.PruneEvidence(ctx, "t1", head(20)); err != nil {
		t.Fatal(err)
	}
	if n := rawRecords(t, s); n != 5 {
		t.Errorf("%d records stored after finishing, want 5", n)
	}
	h, _ := s.EvidenceHead(ctx, "t1")
	if h != head(25) {
		t.Errorf("head %+v", h)
	}
}

func TestEvidenceArchivesPutList(t *testing.T) {
	ctx := context.Background()
	s := retentionLog(t, 5)
	a := store.EvidenceArchive{Tenant: "t1", FirstSeq: 1, LastSeq: 10, File: "a"}
	b := store.EvidenceArchive{Tenant: "t1", FirstSeq: 11, LastSeq: 20, File: "b"}
	for _, x := range []store.EvidenceArchive{b, a} {
		if err := s.PutEvidenceArchive(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutEvidenceArchive(ctx, a); !errors.Is(err, store.ErrExists) {
		t.Errorf("second put = %v, want ErrExists", err)
	}
	got, err := s.ListEvidenceArchives(ctx, "t1")
	if err != nil || len(got) != 2 || got[0].File != "a" || got[1].File != "b" {
		t.Errorf("ListEvidenceArchives = %+v, %v", got, err)
	}
	if got, _ := s.ListEvidenceArchives(ctx, "t2"); len(got) != 0 {
		t.Errorf("another tenant's archives: %+v", got)
	}
}
