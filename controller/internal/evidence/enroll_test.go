package evidence

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/evidence"
)

// TestRecordEnrollments races enrollment entries for the last uses of a token, mixed with
// ordinary entries, through one tenant's log: exactly as many enrollments as the token
// has uses are recorded and stored, each refused one is neither, every ordinary entry is
// recorded, and the log verifies with no hole.
func TestRecordEnrollments(t *testing.T) {
	e := newEnv(t, 1<<40)
	ctx := context.Background()
	now := time.Now()
	hash := sha256.Sum256([]byte("the-secret"))
	const uses, racers, others = 5, 16, 16
	tok := store.Token{ID: "tok1", Tenant: "clinic", Hash: hash[:], UsesLeft: uses, Tier: 1,
		ExpiresAt: now.Add(time.Hour)}
	if err := e.store.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		enrolled = map[string]uint64{} // agent id: its record's seq
		refused  int
	)
	for i := range racers + others {
		wg.Go(func() {
			entry := Entry{Tenant: "clinic", Type: TypeCheckChanged,
				Actor: Actor{Kind: ActorAgent, ID: "a1"}, Subject: "a1/ssh"}
			id := fmt.Sprintf("agent-%02d", i)
			if i < racers {
				entry = Entry{Tenant: "clinic", Type: TypeAgentEnrolled,
					Actor: Actor{Kind: ActorAgent, ID: id}, Subject: id,
					Enrollment: &store.Enrollment{Hash: hash[:], Now: now,
						Agent: store.Agent{ID: id, Tenant: "clinic", TokenID: "tok1", Tier: 1}}}
			}
			rec, err := e.log.Record(ctx, entry)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && i < racers:
				enrolled[id] = rec.Seq
			case err == nil:
			case i < racers && errors.Is(err, store.ErrTokenRefused):
				refused++
				if rec != (Receipt{}) {
					t.Errorf("refused %s has a receipt %+v", id, rec)
				}
			default:
				t.Errorf("Record %d: %v", i, err)
			}
		})
	}
	wg.Wait()

	if len(enrolled) != uses || refused != racers-uses {
		t.Fatalf("%d enrolled, %d refused; want %d and %d", len(enrolled), refused, uses,
			racers-uses)
	}
	agents, err := e.store.ListAgents(ctx, "clinic")
	if err != nil {
		t.Fatal(err)
	}
	if len(agents) != uses {
		t.Fatalf("%d agents stored, want %d", len(agents), uses)
	}
	for _, a := range agents {
		if _, ok := enrolled[a.ID]; !ok {
			t.Errorf("agent %s stored but its enrollment was refused", a.ID)
		}
	}
	toks, err := e.store.ListTokens(ctx, "clinic")
	if err != nil {
		t.Fatal(err)
	}
	if toks[0].UsesLeft != 0 {
		t.Errorf("uses left = %d, want 0", toks[0].UsesLeft)
	}

	b, _ := e.export(t, ExportQuery{Tenant: "clinic"})
	rep, err := b.Verify(evidence.VerifyOptions{Roots: e.ca.Roots()})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if want := uses + others; rep.Records < want {
		t.Errorf("log holds %d records, want at least %d", rep.Records, want)
	}
	recs, err := e.store.ListEvidence(ctx, "clinic", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var recorded int
	for _, r := range recs {
		var body struct{ Type, Subject string }
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		if body.Type == TypeAgentEnrolled {
			recorded++
			if _, ok := enrolled[body.Subject]; !ok {
				t.Errorf("record of the refused enrollment of %s", body.Subject)
			}
		}
	}
	if recorded != uses {
		t.Errorf("%d enrollments recorded, want %d", recorded, uses)
	}
}

func TestDiscardRefusesEnrollments(t *testing.T) {
	_, err := Discard.Record(context.Background(), Entry{Tenant: "t", Type: TypeAgentEnrolled,
		Enrollment: &store.Enrollment{Source: netip.MustParseAddr("10.0.0.1")}})
	if err == nil {
		t.Fatal("Discard took an enrollment it cannot store")
	}
}
