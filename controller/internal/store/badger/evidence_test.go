package badger

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
)

func TestEvidenceAppendListReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir, Options{})

	h, err := s.EvidenceHead(ctx, "t1")
	if err != nil || h != (store.EvidenceHead{}) {
		t.Fatalf("EvidenceHead of an empty log = %+v, %v", h, err)
	}
	recs := []store.EvidenceRecord{{Seq: 1, Hash: [32]byte{1}, Body: []byte(`{"a":1}`)},
		{Seq: 2, Hash: [32]byte{2}, Body: []byte(`{"a":2}`)}}
	if err := s.AppendEvidence(ctx, "t1", h, recs); err != nil {
		t.Fatal(err)
	}
	// a writer holding the old head conflicts
	err = s.AppendEvidence(ctx, "t1", h, recs[:1])
	if !errors.Is(err, store.ErrEvidenceConflict) {
		t.Errorf("stale append = %v, want ErrEvidenceConflict", err)
	}
	// a batch out of sequence is refused
	bad := []store.EvidenceRecord{{Seq: 5, Body: []byte("x")}}
	if err := s.AppendEvidence(ctx, "t1", store.EvidenceHead{Size: 2, Hash: [32]byte{2}},
		bad); err == nil {
		t.Error("out-of-sequence append succeeded")
	}
	cp := store.EvidenceCheckpoint{Tenant: "t1", Size: 2, Head: [32]byte{2},
		Time: time.Unix(100, 0).UTC(), Signature: []byte("sig")}
	if err := s.PutCheckpoint(ctx, cp); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCheckpoint(ctx, cp); !errors.Is(err, store.ErrExists) {
		t.Errorf("second checkpoint of one size = %v, want ErrExists", err)
	}
	w := store.EvidenceWitness{Tenant: "t1", Size: 2, Head: [32]byte{2}, Agent: "col1",
		Signature: []byte("w"), CertDER: [][]byte{[]byte("c")}}
	if err := s.PutWitness(ctx, w); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir, Options{})
	defer s.Close()
	h, err = s.EvidenceHead(ctx, "t1")
	if err != nil || h.Size != 2 || h.Hash != [32]byte{2} {
		t.Errorf("EvidenceHead after reopen = %+v, %v", h, err)
	}
	got, err := s.ListEvidence(ctx, "t1", 1, 0)
	if err != nil || len(got) != 1 || got[0].Seq != 2 || string(got[0].Body) != `{"a":2}` ||
		got[0].Hash != [32]byte{2} {
		t.Errorf("ListEvidence after 1 = %+v, %v", got, err)
	}
	if got, _ := s.ListEvidence(ctx, "t1", 0, 1); len(got) != 1 || got[0].Seq != 1 {
		t.Errorf("ListEvidence limit 1 = %+v", got)
	}
	if got, _ := s.ListEvidence(ctx, "t2", 0, 0); len(got) != 0 {
		t.Errorf("another tenant's log = %+v", got)
	}
	cps, err := s.ListCheckpoints(ctx, "t1", 0)
	if err != nil || len(cps) != 1 || cps[0].Size != 2 || string(cps[0].Signature) != "sig" {
		t.Errorf("ListCheckpoints = %+v, %v", cps, err)
	}
	if cps, _ := s.ListCheckpoints(ctx, "t1", 2); len(cps) != 0 {
		t.Errorf("ListCheckpoints after 2 = %+v", cps)
	}
	ws, err := s.ListWitnesses(ctx, "t1", 0)
	if err != nil || len(ws) != 1 || ws[0].Agent != "col1" {
		t.Errorf("ListWitnesses = %+v, %v", ws, err)
	}
	if ws, _ := s.ListWitnesses(ctx, "t1", 2); len(ws) != 0 {
		t.Errorf("ListWitnesses after 2 = %+v", ws)
	}
}
