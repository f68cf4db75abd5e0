package badger

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
)

// TestAppendEvidenceWithEnrollments appends records carrying enrollments: when one of
// them is refused, nothing at all is stored (no record, no head move, no agent, no token
// use) and the error names its record; otherwise the records, the agents and the uses
// are stored together.
func TestAppendEvidenceWithEnrollments(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := open(t, t.TempDir(), Options{})
	defer s.Close()
	if err := s.CreateTenant(ctx, store.Tenant{ID: "t1"}); err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256([]byte("the-secret"))
	if err := s.CreateToken(ctx, store.Token{ID: "tok", Tenant: "t1", Hash: hash[:],
		UsesLeft: 2, Tier: 1, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	enrollment := func(id string) *store.Enrollment {
		return &store.Enrollment{Hash: hash[:], Now: now,
			Agent: store.Agent{ID: id, Tenant: "t1", TokenID: "tok", Tier: 1}}
	}
	rec := func(seq uint64, en *store.Enrollment) store.EvidenceRecord {
		return store.EvidenceRecord{Seq: seq, Hash: [32]byte{byte(seq)},
			Body: []byte(`{"n":1}`), Enrollment: en}
	}
	state := func() (store.EvidenceHead, int, uint32) {
		h, err := s.EvidenceHead(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		agents, err := s.ListAgents(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		toks, err := s.ListTokens(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		return h, len(agents), toks[0].UsesLeft
	}

	// three enrollments for two uses: the third is refused and takes the others with it
	err := s.AppendEvidence(ctx, "t1", store.EvidenceHead{}, []store.EvidenceRecord{
		rec(1, enrollment("a1")), rec(2, nil), rec(3, enrollment("a2")),
		rec(4, enrollment("a3"))})
	var enErr *store.EnrollmentError
	if !errors.As(err, &enErr) || enErr.Seq != 4 || !errors.Is(err, store.ErrTokenRefused) {
		t.Fatalf("AppendEvidence = %v, want the enrollment of record 4 refused", err)
	}
	if h, agents, left := state(); h.Size != 0 || agents != 0 || left != 2 {
		t.Fatalf("after a refusal: head %d, %d agents, %d uses left; want 0, 0, 2", h.Size,
			agents, left)
	}

	// a taken agent id is refused too
	err = s.AppendEvidence(ctx, "t1", store.EvidenceHead{}, []store.EvidenceRecord{
		rec(1, enrollment("a1")), rec(2, enrollment("a1"))})
	if !errors.As(err, &enErr) || enErr.Seq != 2 || !errors.Is(err, store.ErrExists) {
		t.Fatalf("AppendEvidence = %v, want the enrollment of record 2 refused", err)
	}

	if err := s.AppendEvidence(ctx, "t1", store.EvidenceHead{}, []store.EvidenceRecord{
		rec(1, enrollment("a1")), rec(2, nil), rec(3, enrollment("a2"))}); err != nil {
		t.Fatal(err)
	}
	if h, agents, left := state(); h.Size != 3 || agents != 2 || left != 0 {
		t.Fatalf("after the append: head %d, %d agents, %d uses left; want 3, 2, 0", h.Size,
			agents, left)
	}
	if _, err := s.GetAgent(ctx, "a2"); err != nil {
		t.Fatal(err)
	}
}
