package witness

import (
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/agent/internal/logtest"
	"github.com/wardsec/ward/agent/internal/testca"
	"github.com/wardsec/ward/pkg/evidence"
	"github.com/wardsec/ward/pkg/identity"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

const tenant = "clinic-a"

// history is a tenant's log as the controller holds it: leaf and chain hashes.
type history struct {
	leaves []evidence.Hash
	chain  []evidence.Hash // chain[i] is the hash of record i; chain[0] is zero
}

func newHistory(n int, salt string) *history {
	h := &history{chain: []evidence.Hash{{}}}
	h.add(n, salt)
	return h
}

func (h *history) add(n int, salt string) {
	for i := 0; i < n; i++ {
		leaf := evidence.Hash(sha256.Sum256([]byte(fmt.Sprintf("%s-%d", salt,
			len(h.leaves)))))
		h.leaves = append(h.leaves, leaf)
		h.chain = append(h.chain, evidence.ChainHash(h.chain[len(h.chain)-1], leaf))
	}
}

// checkpoint returns the checkpoint of the first size records with a proof from from.
func (h *history) checkpoint(from, size uint64) *wardv1.Checkpoint {
	cp := &wardv1.Checkpoint{Tenant: tenant, Size: size, HeadHash: bytesOf(h.chain[size]),
		SignedAt:  timestamppb.New(time.Unix(1_700_000_000+int64(size), 0)),
		Signature: []byte("controller-signature"), FromSize: from,
		FromHead: bytesOf(h.chain[from])}
	for _, l := range h.leaves[from:size] {
		cp.LeafHashes = append(cp.LeafHashes, bytesOf(l))
	}
	return cp
}

func bytesOf(h evidence.Hash) []byte { return append([]byte(nil), h[:]...) }

type fixture struct {
	dir  string
	pair tls.Certificate
	w    *Witness
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ca := testca.New(t, "ward.test")
	f := &fixture{dir: t.TempDir(),
		pair: ca.KeyPair(t, identity.Agent("ward.test", tenant, "col-1"), time.Hour)}
	f.reopen(t)
	return f
}

func (f *fixture) reopen(t *testing.T) {
	t.Helper()
	w, err := Open(Config{Dir: f.dir, Tenant: tenant, Log: logtest.New(t),
		KeyPair: func() (tls.Certificate, error) { return f.pair, nil }})
	if err != nil {
		t.Fatal(err)
	}
	f.w = w
}

// accepted fails unless ws countersigns cp with the fixture's key.
func (f *fixture) accepted(t *testing.T, cp *wardv1.Checkpoint, ws *wardv1.WitnessSignature) {
	t.Helper()
	if ws == nil || ws.GetInconsistency() != "" {
		t.Fatalf("checkpoint %d refused: %v", cp.GetSize(), ws)
	}
	head, _ := hashOf(cp.GetHeadHash())
	text := evidence.Checkpoint{Tenant: tenant, Size: cp.GetSize(), Head: head,
		Time: cp.GetSignedAt().AsTime()}.Text()
	if err := evidence.VerifySignature(f.pair.Leaf.PublicKey, text, ws.GetSignature()); err != nil {
		t.Fatalf("countersignature of %d: %v", cp.GetSize(), err)
	}
	if len(ws.GetCertificates()) != 1 || ws.GetSize() != cp.GetSize() {
		t.Fatalf("witness signature carries %d certificates, size %d", len(ws.GetCertificates()),
			ws.GetSize())
	}
}

func refused(t *testing.T, ws *wardv1.WitnessSignature, want string) {
	t.Helper()
	if ws == nil || len(ws.GetSignature()) != 0 || !strings.Contains(ws.GetInconsistency(), want) {
		t.Fatalf("want a refusal containing %q, got %v", want, ws)
	}
}

func TestWitnessCountersignsCheckpointsThatExtendTheCopy(t *testing.T) {
	f := newFixture(t)
	h := newHistory(300, "a")

	first := h.checkpoint(100, 100) // first contact: no proof needed
	f.accepted(t, first, f.w.Check(first))
	second := h.checkpoint(100, 250)
	f.accepted(t, second, f.w.Check(second))
	f.accepted(t, second, f.w.Check(second)) // delivered twice: signed again, kept once

	// A proof may start before the newest countersigned checkpoint (the controller had
	// not yet stored the last countersignature).
	f.reopen(t)
	third := h.checkpoint(100, 300)
	f.accepted(t, third, f.w.Check(third))

	entries, err := f.w.copy.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("copy holds %d entries, want 3: %+v", len(entries), entries)
	}
	for i, want := range []uint64{100, 250, 300} {
		e := entries[i]
		if e.Size != want || e.Head != h.chain[want].String() || e.Refused != "" ||
			len(e.WitnessSignature) == 0 || string(e.ControllerSignature) != "controller-signature" {
			t.Errorf("entry %d = %+v", i, e)
		}
	}
}

func TestWitnessRefusesWhatDoesNotExtendTheCopy(t *testing.T) {
	honest := newHistory(200, "a")
	rewritten := newHistory(200, "a")
	rewritten.leaves[49] = evidence.Hash{1} // record 50 changed, chain rebuilt
	for i := 50; i <= 200; i++ {
		rewritten.chain[i] = evidence.ChainHash(rewritten.chain[i-1], rewritten.leaves[i-1])
	}
	tests := []struct {
		name string
		cp   func() *wardv1.Checkpoint
		want string
	}{
		{"rewritten history, proof from the witnessed head",
			func() *wardv1.Checkpoint { return rewritten.checkpoint(100, 200) }, "rewritten"},
		{"rewritten history, proof from the start",
			func() *wardv1.Checkpoint { return rewritten.checkpoint(0, 200) }, "rewritten"},
		{"same size, other head",
			func() *wardv1.Checkpoint { return rewritten.checkpoint(100, 100) }, "countersigned"},
		{"proof that does not reach the head", func() *wardv1.Checkpoint {
			cp := honest.checkpoint(100, 200)
			cp.LeafHashes[7] = make([]byte, 32)
			return cp
		}, "do not lead to head"},
		{"proof starting after the witnessed head",
			func() *wardv1.Checkpoint { return honest.checkpoint(150, 200) }, "beyond"},
		{"proof of the wrong length", func() *wardv1.Checkpoint {
			cp := honest.checkpoint(100, 200)
			cp.LeafHashes = cp.LeafHashes[1:]
			return cp
		}, "proof covers"},
		{"another tenant", func() *wardv1.Checkpoint {
			cp := honest.checkpoint(100, 200)
			cp.Tenant = "clinic-b"
			return cp
		}, "tenant"},
		{"malformed head", func() *wardv1.Checkpoint {
			cp := honest.checkpoint(100, 200)
			cp.HeadHash = cp.HeadHash[:5]
			return cp
		}, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			start := honest.checkpoint(100, 100)
			f.accepted(t, start, f.w.Check(start))

			refused(t, f.w.Check(tt.cp()), tt.want)

			// The refusal is kept, and the honest history still extends the copy.
			f.reopen(t)
			entries, _ := f.w.copy.Entries()
			if len(entries) != 2 || entries[1].Refused == "" {
				t.Fatalf("copy after refusal: %+v", entries)
			}
			next := honest.checkpoint(100, 200)
			f.accepted(t, next, f.w.Check(next))
		})
	}
}

func TestWitnessAnswersUnknownOlderCheckpointsWithItsNewest(t *testing.T) {
	f := newFixture(t)
	h := newHistory(200, "a")
	newest := h.checkpoint(200, 200)
	f.accepted(t, newest, f.w.Check(newest))
	// Answered with the newest countersignature again, so the controller catches up.
	f.accepted(t, newest, f.w.Check(h.checkpoint(0, 50)))
}

func TestWitnessAnswersACheckpointWithoutProofWithItsNewestCountersignature(t *testing.T) {
	f := newFixture(t)
	h := newHistory(300, "a")
	first := h.checkpoint(100, 100)
	f.accepted(t, first, f.w.Check(first))

	// The controller had not yet stored the countersignature of 100: it sends 300 as to a
	// new witness. Once it has, it sends the proof from 100.
	f.accepted(t, first, f.w.Check(h.checkpoint(300, 300)))
	next := h.checkpoint(100, 300)
	f.accepted(t, next, f.w.Check(next))
}

func TestCopyIgnoresALineCutShortAndAppendsAfterIt(t *testing.T) {
	f := newFixture(t)
	h := newHistory(20, "a")
	first := h.checkpoint(10, 10)
	f.accepted(t, first, f.w.Check(first))

	path := filepath.Join(f.dir, CopyFile)
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString(`{"tenant":"clinic-a","size":2`) // a crash in the middle of a line
	fh.Close()

	f.reopen(t)
	second := h.checkpoint(10, 20)
	f.accepted(t, second, f.w.Check(second))
	entries, err := f.w.copy.Entries()
	if err != nil || len(entries) != 2 || entries[1].Size != 20 {
		t.Fatalf("entries %+v, %v", entries, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("copy mode %v", fi.Mode())
	}
}

func TestCopyNamesAnUnreadableLine(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "evidence"), 0o700)
	os.WriteFile(filepath.Join(dir, CopyFile), []byte("{}\nnot json\n"), 0o600)
	c, _ := OpenCopy(dir)
	if _, err := c.Entries(); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v", err)
	}
}
