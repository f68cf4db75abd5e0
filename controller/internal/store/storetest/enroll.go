package storetest

import (
	"errors"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
)

// agentFor returns an EnrollAgent callback that names id and the token it is given, and
// counts its calls in calls when calls is not nil.
func agentFor(id string, calls *atomic.Int32) func(store.Token) (store.Agent, error) {
	return func(tok store.Token) (store.Agent, error) {
		if calls != nil {
			calls.Add(1)
		}
		return store.Agent{ID: id, Tenant: tok.Tenant, TokenID: tok.ID, Tier: tok.Tier,
			Roles: tok.Roles, EnrolledAt: epoch, CertSerial: "0b", CertExpires: epoch.Add(24 * time.Hour),
			Host: store.HostFacts{Hostname: id + ".clinic"}}, nil
	}
}

// usesLeft returns the uses left of token id in tenant.
func usesLeft(t *testing.T, s store.Store, tenant, id string) uint32 {
	t.Helper()
	toks, err := s.ListTokens(ctxOf(t), tenant)
	must(t, err)
	for _, tok := range toks {
		if tok.ID == id {
			return tok.UsesLeft
		}
	}
	t.Fatalf("no token %s in %s", id, tenant)
	return 0
}

func testEnrollAgent(t *testing.T, h Harness) {
	s, ctx := h.New(t), ctxOf(t)
	seedTenants(t, s, "a")
	tok := newToken("a", "t1", epoch)
	tok.UsesLeft, tok.Tier = 2, 3
	must(t, s.CreateToken(ctx, tok))

	src := netip.MustParseAddr("10.0.0.1")
	got, a, err := s.EnrollAgent(ctx, tok.Hash, src, epoch, agentFor("ag1", nil))
	must(t, err)
	if got.ID != "t1" || got.Tenant != "a" || got.UsesLeft != 1 {
		t.Errorf("token = %+v, want t1 of a with 1 use left", got)
	}
	if a.ID != "ag1" || a.TokenID != "t1" || a.Tier != 3 {
		t.Errorf("agent = %+v", a)
	}
	stored, err := s.GetAgent(ctx, "ag1")
	must(t, err)
	if stored.Tenant != "a" || stored.TokenID != "t1" || stored.CertSerial != "0b" ||
		stored.Host.Hostname != "ag1.clinic" {
		t.Errorf("stored agent = %+v", stored)
	}
	if n := usesLeft(t, s, "a", "t1"); n != 1 {
		t.Errorf("uses left = %d, want 1", n)
	}
}

func testEnrollAgentRefusals(t *testing.T, h Harness) {
	inside := netip.MustParseAddr("192.168.10.7")
	tests := []struct {
		name   string
		mutate func(*store.Token)
		secret string
		now    time.Time
		agent  func(store.Token) (store.Agent, error)
		want   error // nil: any error
	}{
		{name: "unknown secret", secret: "secret-nope", want: store.ErrTokenRefused},
		{name: "used up", mutate: func(tk *store.Token) { tk.UsesLeft = 0 },
			want: store.ErrTokenRefused},
		{name: "expired", now: epoch.Add(time.Hour), want: store.ErrTokenRefused},
		{name: "revoked", mutate: func(tk *store.Token) { tk.Revoked = true },
			want: store.ErrTokenRefused},
		{name: "wrong address", mutate: func(tk *store.Token) {
			tk.CIDR = netip.MustParsePrefix("10.0.0.0/8")
		}, want: store.ErrTokenRefused},
		{name: "agent id taken", agent: agentFor("taken", nil), want: store.ErrExists},
		{name: "agent names another token", agent: func(tk store.Token) (store.Agent, error) {
			a, _ := agentFor("new", nil)(tk)
			a.TokenID = "other"
			return a, nil
		}, want: store.ErrTokenRefused},
		{name: "agent of another tier", agent: func(tk store.Token) (store.Agent, error) {
			a, _ := agentFor("new", nil)(tk)
			a.Tier++
			return a, nil
		}, want: store.ErrTokenRefused},
		{name: "agent with roles the token does not grant", agent: func(tk store.Token) (
			store.Agent, error) {
			a, _ := agentFor("new", nil)(tk)
			a.Roles = []string{"host", "collector"}
			return a, nil
		}, want: store.ErrTokenRefused},
		{name: "signing fails", agent: func(store.Token) (store.Agent, error) {
			return store.Agent{}, errSigning
		}, want: errSigning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ctx := h.New(t), ctxOf(t)
			seedTenants(t, s, "a")
			seedAgent(t, s, "a", "taken")
			tok := newToken("a", "t1", epoch)
			tok.UsesLeft = 5
			if tt.mutate != nil {
				tt.mutate(&tok)
			}
			must(t, s.CreateToken(ctx, tok))
			secret, now, agent := tt.secret, tt.now, tt.agent
			if secret == "" {
				secret = "secret-t1"
			}
			if now.IsZero() {
				now = epoch
			}
			if agent == nil {
				agent = agentFor("new", nil)
			}

			_, _, err := s.EnrollAgent(ctx, hash(secret), inside, now, agent)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("EnrollAgent = %v, want %v", err, tt.want)
			}
			if errors.Is(tt.want, store.ErrTokenRefused) &&
				err.Error() != store.ErrTokenRefused.Error() {
				t.Errorf("refusal says %q, want exactly %q", err, store.ErrTokenRefused)
			}
			if n := usesLeft(t, s, "a", "t1"); n != tok.UsesLeft {
				t.Errorf("uses left = %d, want %d (unchanged)", n, tok.UsesLeft)
			}
			agents, err := s.ListAgents(ctx, "")
			must(t, err)
			if ids := agentIDs(agents); !slices.Equal(ids, []string{"taken"}) {
				t.Errorf("agents = %v, want only the seeded one", ids)
			}
		})
	}
}

var errSigning = errors.New("signing failed")

// testEnrollAgentRace has more enrollments than uses race for one token: exactly as many
// as it has uses get an agent, and the others leave nothing behind.
func testEnrollAgentRace(t *testing.T, h Harness) {
	for _, uses := range []uint32{1, 3} {
		s, ctx := h.New(t), ctxOf(t)
		seedTenants(t, s, "a")
		tok := newToken("a", "t1", epoch)
		tok.UsesLeft = uses
		must(t, s.CreateToken(ctx, tok))

		const racers = 8
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			won     []string
			refused atomic.Int32
		)
		for i := range racers {
			id := string(rune('a'+i)) + "-agent"
			wg.Go(func() {
				_, a, err := s.EnrollAgent(ctx, tok.Hash, netip.MustParseAddr("10.0.0.1"),
					epoch, agentFor(id, nil))
				switch {
				case err == nil:
					mu.Lock()
					won = append(won, a.ID)
					mu.Unlock()
				case errors.Is(err, store.ErrTokenRefused):
					refused.Add(1)
				default:
					t.Errorf("EnrollAgent %s: %v", id, err)
				}
			})
		}
		wg.Wait()

		if len(won) != int(uses) || refused.Load() != racers-int32(uses) {
			t.Fatalf("%d uses: %d enrolled, %d refused", uses, len(won), refused.Load())
		}
		agents, err := s.ListAgents(ctx, "a")
		must(t, err)
		slices.Sort(won)
		if ids := agentIDs(agents); !slices.Equal(ids, won) {
			t.Errorf("%d uses: stored agents %v, want the winners %v", uses, ids, won)
		}
		if n := usesLeft(t, s, "a", "t1"); n != 0 {
			t.Errorf("%d uses: %d left, want 0", uses, n)
		}
	}
}

// testEnrollAgentFailureAmongOthers enrolls concurrently with failures mixed in: the
// failures (signing errors, a taken id) leave no agent and take no use, the others are
// stored whole, whichever transaction they shared.
func testEnrollAgentFailureAmongOthers(t *testing.T, h Harness) {
	s, ctx := h.New(t), ctxOf(t)
	seedTenants(t, s, "a")
	seedAgent(t, s, "a", "taken")
	tok := newToken("a", "t1", epoch)
	tok.UsesLeft = 100
	must(t, s.CreateToken(ctx, tok))

	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := range 30 {
		agent := agentFor("ok-"+string(rune('a'+i)), nil)
		switch i % 3 {
		case 1:
			agent = func(store.Token) (store.Agent, error) { return store.Agent{}, errSigning }
		case 2:
			agent = agentFor("taken", nil)
		}
		wg.Go(func() {
			_, _, err := s.EnrollAgent(ctx, tok.Hash, netip.MustParseAddr("10.0.0.1"), epoch,
				agent)
			if err == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()

	if ok.Load() != 10 {
		t.Fatalf("%d enrolled, want 10", ok.Load())
	}
	if n := usesLeft(t, s, "a", "t1"); n != 90 {
		t.Errorf("uses left = %d, want 90", n)
	}
	agents, err := s.ListAgents(ctx, "a")
	must(t, err)
	if len(agents) != 11 {
		t.Errorf("%d agents stored, want 10 and the seeded one", len(agents))
	}
	taken, err := s.GetAgent(ctx, "taken")
	must(t, err)
	if taken.CertSerial != "0a" {
		t.Errorf("the taken id's agent was overwritten: %+v", taken)
	}
}
