package enroll

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/scrub"
)

// recorder keeps entries and stores their enrollments in st, or fails every Record
// when fail is set.
type recorder struct {
	st      Store
	mu      sync.Mutex
	entries []evidence.Entry
	fail    bool
}

func (r *recorder) Record(ctx context.Context, e evidence.Entry) (evidence.Receipt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return evidence.Receipt{}, errors.New("log unavailable")
	}
	if _, err := (storeOnly{r.st}).Record(ctx, e); err != nil {
		return evidence.Receipt{}, err
	}
	r.entries = append(r.entries, e)
	return evidence.Receipt{Tenant: e.Tenant, Seq: uint64(len(r.entries))}, nil
}

func TestEnrollmentRecordedAsEvidence(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, func(c *Config) { rec.st = c.Store; c.Evidence = rec })
	e.token("tok1", "the-secret", nil)

	resp, err := e.enroll("the-secret", newCSR(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.entries) != 1 {
		t.Fatalf("%d evidence entries, want 1", len(rec.entries))
	}
	got := rec.entries[0]
	if got.Tenant != "clinic-a" || got.Type != evidence.TypeAgentEnrolled ||
		got.Subject != resp.GetAgentId() || got.Actor.Kind != evidence.ActorAgent {
		t.Fatalf("entry = %+v", got)
	}
	if data, _ := got.Data.(map[string]any); data["token_id"] != "tok1" {
		t.Fatalf("entry data = %v", got.Data)
	}
	if strings.Contains(strings.ToLower(formatAny(got.Data)), "the-secret") {
		t.Fatal("the token secret is in the evidence")
	}
}

func TestEnrollmentFailsWithoutEvidence(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Evidence = &recorder{fail: true} })
	e.token("tok1", "the-secret", nil)

	resp, err := e.enroll("the-secret", newCSR(t))
	if status.Code(err) != codes.Internal || resp != nil {
		t.Fatalf("Enroll with the evidence log down = %v, %v; want Internal, no certificate",
			resp, err)
	}
	// Nothing half-done: no agent, and the token keeps its use.
	if n := len(e.agents()); n != 0 {
		t.Fatalf("%d agents stored without their record", n)
	}
	toks, err := e.store.ListTokens(context.Background(), "clinic-a")
	if err != nil {
		t.Fatal(err)
	}
	if toks[0].UsesLeft != 1 {
		t.Fatalf("uses left = %d, want 1", toks[0].UsesLeft)
	}
}

func TestEnrollmentStoredWithItsRecord(t *testing.T) {
	var log *evidence.Log
	e := newEnv(t, func(c *Config) {
		log = evidence.NewLog(evidence.Config{Store: c.Store.(store.Evidence),
			Scrubber: scrub.New([]byte("salt"))})
		c.Evidence = log
	})
	e.token("tok1", "the-secret", func(tok *store.Token) { tok.UsesLeft = 3 })

	resp, err := e.enroll("the-secret", newCSR(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.GetAgent(context.Background(), resp.GetAgentId()); err != nil {
		t.Fatalf("the enrolled agent is not stored: %v", err)
	}
	recs, err := e.store.(store.Evidence).ListEvidence(context.Background(), "clinic-a", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || !strings.Contains(string(recs[0].Body), resp.GetAgentId()) ||
		!strings.Contains(string(recs[0].Body), evidence.TypeAgentEnrolled) {
		t.Fatalf("log holds %d records, want the enrollment's", len(recs))
	}
}

func formatAny(v any) string {
	var b strings.Builder
	for k, x := range v.(map[string]any) {
		b.WriteString(k)
		b.WriteString("=")
		if s, ok := x.(string); ok {
			b.WriteString(s)
		}
		b.WriteString(" ")
	}
	return b.String()
}

// TestEnrollmentTakesTheTokensRoles stores the token's roles with the agent and names
// them in the evidence; an agent of a token without roles (made
// before tokens carried them) is host-only.
func TestEnrollmentTakesTheTokensRoles(t *testing.T) {
	tests := []struct {
		name        string
		tokenRoles  []string
		wantStored  []string
		wantAllowed []string
	}{
		{"host token", []string{"host"}, []string{"host"}, []string{"host"}},
		{"collector token", []string{"host", "collector"}, []string{"host", "collector"},
			[]string{"host", "collector"}},
		{"token from before roles", nil, nil, []string{"host"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			e := newEnv(t, func(c *Config) { rec.st = c.Store; c.Evidence = rec })
			e.token("tok1", "the-secret", func(tok *store.Token) { tok.Roles = tt.tokenRoles })

			if _, err := e.enroll("the-secret", newCSR(t)); err != nil {
				t.Fatal(err)
			}
			agents := e.agents()
			if len(agents) != 1 || !slices.Equal(agents[0].Roles, tt.wantStored) {
				t.Fatalf("stored agents = %+v, want roles %q", agents, tt.wantStored)
			}
			data, _ := rec.entries[0].Data.(map[string]any)
			if got, _ := data["roles"].([]string); !slices.Equal(got, tt.wantAllowed) {
				t.Errorf("evidence roles = %v, want %q", data["roles"], tt.wantAllowed)
			}
		})
	}
}
