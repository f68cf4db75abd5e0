// Package storetest is the conformance suite every store.Store implementation must pass
// (the embedded Badger store today, the Redis store later). Run it from the
// implementation's tests:
//
//	storetest.Run(t, storetest.Harness{New: ..., Reopen: ...})
package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
)

// Harness opens stores for the suite.
type Harness struct {
	// New returns an empty store; the harness closes it at the end of the test (t.Cleanup).
	New func(t *testing.T) store.Store
	// Reopen closes s and opens the same data again. Nil skips the persistence tests.
	Reopen func(t *testing.T, s store.Store) store.Store
}

// epoch is the suite's fixed "now"; stores receive times, they never read a clock.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// Run runs the whole suite as subtests of t.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"Tenants", testTenants},
		{"Operators", testOperators},
		{"Tokens", testTokens},
		{"RedeemRefusals", testRedeemRefusals},
		{"RedeemConcurrentUses", testRedeemConcurrent},
		{"EnrollAgent", testEnrollAgent},
		{"EnrollAgentRefusals", testEnrollAgentRefusals},
		{"EnrollAgentRace", testEnrollAgentRace},
		{"EnrollAgentFailureAmongOthers", testEnrollAgentFailureAmongOthers},
		{"Agents", testAgents},
		{"Roles", testRoles},
		{"Messages", testMessages},
		{"MessagesConcurrent", testMessagesConcurrent},
		{"MessageBatches", testMessageBatches},
		{"Reopen", testReopen},
		{"Ping", testPing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, h) })
	}
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func hash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

func seedTenants(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		must(t, s.CreateTenant(ctxOf(t), store.Tenant{ID: id, DisplayName: "Clinic " + id,
			CreatedAt: epoch, CreatedBy: "admin"}))
	}
}

func seedAgent(t *testing.T, s store.Store, tenant, id string) store.Agent {
	t.Helper()
	a := store.Agent{ID: id, Tenant: tenant, TokenID: "tok", Tier: 1, EnrolledAt: epoch,
		CertSerial: "0a", CertExpires: epoch.Add(24 * time.Hour),
		Host: store.HostFacts{Hostname: id + ".clinic", Roles: []string{"host"}}}
	must(t, s.CreateAgent(ctxOf(t), a))
	return a
}

func testTenants(t *testing.T, h Harness) {
	s, ctx := h.New(t), ctxOf(t)
	seedTenants(t, s, "clinic-b", "clinic-a")

	wantErr(t, "duplicate", s.CreateTenant(ctx, store.Tenant{ID: "clinic-a"}), store.ErrExists)
	got, err := s.GetTenant(ctx, "clinic-a")
	must(t, err)
	if got.DisplayName != "Clinic clinic-a" || !got.CreatedAt.Equal(epoch) ||
		got.CreatedBy != "admin" {
		t.Errorf("GetTenant = %+v", got)
	}
	_, err = s.GetTenant(ctx, "nope")
	wantErr(t, "unknown tenant", err, store.ErrNotFound)

	list, err := s.ListTenants(ctx)
	must(t, err)
	if len(list) != 2 || list[0].ID != "clinic-a" || list[1].ID != "clinic-b" {
		t.Errorf("ListTenants = %+v, want clinic-a, clinic-b", list)
	}
}

func testOperators(t *testing.T, h Harness) {
	s, ctx := h.New(t), ctxOf(t)
	for _, o := range []store.Operator{
		{Name: "zoe", Role: store.RoleAuditor, CreatedAt: epoch},
		{Name: "admin", Role: store.RoleAdmin, CreatedAt: epoch},
		{Name: "tech", Role: store.RoleTechnician, Tenants: []string{"a", "b"}, CreatedAt: epoch},
	} {
		must(t, s.CreateOperator(ctx, o))
	}
	wantErr(t, "duplicate", s.CreateOperator(ctx, store.Operator{Name: "admin"}), store.ErrExists)

	got, err := s.GetOperator(ctx, "tech")
	must(t, err)
	if got.Role != store.RoleTechnician || !slices.Equal(got.Tenants, []string{"a", "b"}) {
		t.Errorf("GetOperator = %+v", got)
	}
	_, err = s.GetOperator(ctx, "nobody")
	wantErr(t, "unknown operator", err, store.ErrNotFound)

	list, err := s.ListOperators(ctx)
	must(t, err)
	var names []string
	for _, o := range list {
		names = append(names, o.Name)
	}
	if !slices.Equal(names, []string{"admin", "tech", "zoe"}) {
		t.Errorf("ListOperators = %v, want ordered by name", names)
	}

	up, err := s.UpdateOperator(ctx, "tech", func(o *store.Operator) error {
		o.Revoked = true
		return nil
	})
	must(t, err)
	if !up.Revoked {
		t.Error("UpdateOperator result not revoked")
	}
	if got, _ := s.GetOperator(ctx, "tech"); !got.Revoked {
		t.Error("revocation not stored")
	}
	_, err = s.UpdateOperator(ctx, "nobody", func(*store.Operator) error { return nil })
	wantErr(t, "update unknown", err, store.ErrNotFound)
	boom := errors.New("boom")
	_, err = s.UpdateOperator(ctx, "zoe", func(o *store.Operator) error {
		o.Revoked = true
		return boom
	})
	wantErr(t, "update fn error", err, boom)
	if got, _ := s.GetOperator(ctx, "zoe"); got.Revoked {
		t.Error("a failed update was written")
	}
}

func newToken(tenant, id string, created time.Time) store.Token {
	return store.Token{ID: id, Tenant: tenant, Hash: hash("secret-" + id),
		ExpiresAt: epoch.Add(time.Hour), UsesLeft: 1, Tier: 1, CreatedAt: created,
		CreatedBy: "admin"}
}

// testRoles checks that the roles of a token come back from RedeemToken and that an
// agent's roles survive reading, listing and an update of other fields.
func testRoles(t *testing.T, h Harness) {
	s, ctx := h.New(t), ctxOf(t)
	seedTenants(t, s, "a")
	roles := []string{store.AgentRoleHost, store.AgentRoleCollector}

	tok := newToken("a", "t1", epoch)
	tok.Roles = roles
	must(t, s.CreateToken(ctx, tok))
	got, err := s.RedeemToken(ctx, tok.Hash, netip.MustParseAddr("192.0.2.1"), epoch)
	must(t, err)
	if !slices.Equal(got.Roles, roles) {
		t.Errorf("RedeemToken roles = %q, want %q", got.Roles, roles)
	}

	a := seedAgentWith(t, s, store.Agent{ID: "c1", Tenant: "a", Roles: roles})
	_, err = s.UpdateAgent(ctx, a.ID, func(a *store.Agent) error {
		a.Online = true
		return nil
	})
	must(t, err)
	one, err := s.GetAgent(ctx, a.ID)
	must(t, err)
	list, err := s.ListAgents(ctx, "a")
	must(t, err)
	if !slices.Equal(one.Roles, roles) || len(list) != 1 || !slices.Equal(list[0].Roles, roles) {
		t.Errorf("stored roles = %q (get), %+v (list); want %q", one.Roles, list, roles)
	}
}

func seedAgentWith(t *testing.T, s store.Store, a store.Agent) store.Agent {
	t.Helper()
	a.EnrolledAt, a.CertExpires = epoch, epoch.Add(24*time.Hour)
	must(t, s.CreateAgent(ctxOf(t), a))
	return a
}

func testTokens(t *testing.T, h Harness) {
	s, ctx := h.New(t), ctxOf(t)
	seedTenants(t, s, "a", "b")

	wantErr(t, "unknown tenant", s.CreateToken(ctx, newToken("nope", "t0", epoch)),
		store.ErrNotFound)
	must(t, s.CreateToken(ctx, newToken("a", "t1", epoch)))
	must(t, s.CreateToken(ctx, newToken("b", "t2", epoch.Add(time.Minute))))
	withCIDR := newToken("a", "t3", epoch.Add(2*time.Minute))
	withCIDR.CIDR = netip.MustParsePrefix("10.1.0.0/16")
	must(t, s.CreateToken(ctx, withCIDR))
	wantErr(t, "duplicate id", s.CreateToken(ctx, newToken("b", "t1", epoch)), store.ErrExists)
	sameHash := newToken("a", "t4", epoch)
	sameHash.Hash = hash("secret-t1")
	wantErr(t, "duplicate hash", s.CreateToken(ctx, sameHash), store.ErrExists)

	all, err := s.ListTokens(ctx, "")
	must(t, err)
	if ids := tokenIDs(all); !slices.Equal(ids, []string{"t3", "t2", "t1"}) {
		t.Errorf("ListTokens all = %v, want newest first", ids)
	}
	if all[0].CIDR != withCIDR.CIDR {
		t.Errorf("cidr = %v, want %v", all[0].CIDR, withCIDR.CIDR)
	}
	if all[2].CIDR.IsValid() {
		t.Errorf("zero cidr came back as %v", all[2].CIDR)
	}
	inA, err := s.ListTokens(ctx, "a")
	must(t, err)
	if ids := tokenIDs(inA); !slices.Equal(ids, []string{"t3", "t1"}) {
		t.Errorf("ListTokens a = %v", ids)
	}

	rev, err := s.RevokeToken(ctx, "t1")
	must(t, err)
	if !rev.Revoked || rev.Tenant != "a" {
		t.Errorf("RevokeToken = %+v", rev)
	}
	_, err = s.RevokeToken(ctx, "nope")
	wantErr(t, "revoke unknown", err, store.ErrNotFound)
	_, err = s.RedeemToken(ctx, hash("secret-t1"), netip.MustParseAddr("10.0.0.1"), epoch)
	wantErr(t, "redeem revoked", err, store.ErrTokenRefused)
}

func tokenIDs(ts []store.Token) []string {
	var ids []string
	for _, t := range ts {
		ids = append(ids, t.ID)
	}
	return ids
}

func testRedeemRefusals(t *testing.T, h Harness) {
	s, ctx := h.New(t), ctxOf(t)
	seedTenants(t, s, "a")
	mk := func(id string, edit func(*store.Token)) {
		tok := newToken("a", id, epoch)
		edit(&tok)
		must(t, s.CreateToken(ctx, tok))
	}
	mk("plain", func(*store.Token) {})
	mk("expired", func(tk *store.Token) { tk.ExpiresAt = epoch })
	mk("used", func(tk *store.Token) { tk.UsesLeft = 0 })
	mk("revoked", func(tk *store.Token) { tk.Revoked = true })
	mk("net", func(tk *store.Token) {
		tk.CIDR = netip.MustParsePrefix("192.168.10.0/24")
		tk.UsesLeft = 5
	})

	inside, outside := netip.MustParseAddr("192.168.10.7"), netip.MustParseAddr("192.168.11.7")
	tests := []struct {
		name   string
		secret string
		source netip.Addr
		now    time.Time
		ok     bool
	}{
		{"unknown secret", "secret-nope", inside, epoch, false},
		{"expired at its expiry", "secret-expired", inside, epoch, false},
		{"used up", "secret-used", inside, epoch, false},
		{"revoked", "secret-revoked", inside, epoch, false},
		{"outside cidr", "secret-net", outside, epoch, false},
		{"no source, cidr bound", "secret-net", netip.Addr{}, epoch, false},
		{"inside cidr", "secret-net", inside, epoch, true},
		{"inside cidr as ipv4-mapped ipv6", "secret-net",
			netip.MustParseAddr("::ffff:192.168.10.8"), epoch, true},
		{"valid until just before expiry", "secret-plain", outside,
			epoch.Add(time.Hour - time.Nanosecond), true},
		{"plain used up now", "secret-plain", outside, epoch, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := s.RedeemToken(ctx, hash(tt.secret), tt.source, tt.now)
			if !tt.ok {
				if !errors.Is(err, store.ErrTokenRefused) ||
					err.Error() != store.ErrTokenRefused.Error() {
					t.Fatalf("err = %v, want exactly ErrTokenRefused", err)
				}
				return
			}
			must(t, err)
			if tok.Tenant != "a" || tok.Hash == nil {
				t.Errorf("redeemed token = %+v", tok)
			}
		})
	}

	tok, err := s.ListTokens(ctx, "a")
	must(t, err)
	for _, tk := range tok {
		if tk.ID == "net" && tk.UsesLeft != 3 {
			t.Errorf("net token uses left = %d, want 3", tk.UsesLeft)
		}
	}
}

func testRedeemConcurrent(t *testing.T, h Harness) {
	s, ctx := h.New(t), ctxOf(t)
	seedTenants(t, s, "a")
	const uses = 10
	tok := newToken("a", "multi", epoch)
	tok.UsesLeft = uses
	must(t, s.CreateToken(ctx, tok))

	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 3*uses)
	for range 3 * uses {
		wg.Go(func() {
			_, err := s.RedeemToken(ctx, tok.Hash, netip.MustParseAddr("10.0.0.1"), epoch)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, store.ErrTokenRefused):
				refused.Add(1)
			default:
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("redeem: %v", err)
	}
	if ok.Load() != uses || refused.Load() != 2*uses {
		t.Fatalf("%d redeemed and %d refused, want %d and %d", ok.Load(), refused.Load(),
			uses, 2*uses)
	}
}

func testAgents(t *testing.T, h Harness) {
	s, ctx := h.New(t), ctxOf(t)
	seedTenants(t, s, "a", "b")
	seedAgent(t, s, "b", "b-1")
	seedAgent(t, s, "a", "a-2")
	seedAgent(t, s, "a", "a-1")

	err := s.CreateAgent(ctx, store.Agent{ID: "a-1", Tenant: "b"})
	wantErr(t, "same id, other tenant", err, store.ErrExists)
	wantErr(t, "unknown tenant", s.CreateAgent(ctx, store.Agent{ID: "x", Tenant: "nope"}),
		store.ErrNotFound)

	got, err := s.GetAgent(ctx, "b-1")
	must(t, err)
	if got.Tenant != "b" || got.Host.Hostname != "b-1.clinic" ||
		!got.CertExpires.Equal(epoch.Add(24*time.Hour)) {
		t.Errorf("GetAgent = %+v", got)
	}
	_, err = s.GetAgent(ctx, "nope")
	wantErr(t, "unknown agent", err, store.ErrNotFound)

	all, err := s.ListAgents(ctx, "")
	must(t, err)
	if ids := agentIDs(all); !slices.Equal(ids, []string{"a-1", "a-2", "b-1"}) {
		t.Errorf("ListAgents all = %v, want by tenant then id", ids)
	}
	inB, err := s.ListAgents(ctx, "b")
	must(t, err)
	if ids := agentIDs(inB); !slices.Equal(ids, []string{"b-1"}) {
		t.Errorf("ListAgents b = %v", ids)
	}

	up, err := s.UpdateAgent(ctx, "a-1", func(a *store.Agent) error {
		a.Revoked, a.RevokedAt, a.RevokeReason = true, epoch, "stolen laptop"
		return nil
	})
	must(t, err)
	if !up.Revoked || up.RevokeReason != "stolen laptop" {
		t.Errorf("UpdateAgent = %+v", up)
	}
	if got, _ := s.GetAgent(ctx, "a-1"); !got.Revoked || !got.RevokedAt.Equal(epoch) {
		t.Error("revocation not stored")
	}
	_, err = s.UpdateAgent(ctx, "a-2", func(a *store.Agent) error {
		a.Tenant = "b"
		return nil
	})
	if err == nil {
		t.Error("UpdateAgent moved an agent to another tenant")
	}
	if got, _ := s.GetAgent(ctx, "a-2"); got.Tenant != "a" {
		t.Error("a refused update was written")
	}
	_, err = s.UpdateAgent(ctx, "nope", func(*store.Agent) error { return nil })
	wantErr(t, "update unknown", err, store.ErrNotFound)

	// the revocation index holds a-1 alone, also after an unrelated update of it
	_, err = s.UpdateAgent(ctx, "a-1", func(a *store.Agent) error {
		a.Tier = 2
		return nil
	})
	must(t, err)
	_, err = s.UpdateAgent(ctx, "b-1", func(a *store.Agent) error {
		a.Tier = 3
		return nil
	})
	must(t, err)
	revoked, err := s.RevokedAgents(ctx)
	must(t, err)
	if len(revoked) != 1 || !revoked["a-1"] {
		t.Errorf("RevokedAgents = %v, want a-1 alone", revoked)
	}
}

func agentIDs(as []store.Agent) []string {
	var ids []string
	for _, a := range as {
		ids = append(ids, a.ID)
	}
	return ids
}

func message(tenant, agent string, seq uint64, typ string) store.Message {
	return store.Message{Tenant: tenant, Agent: agent, Seq: seq, Type: typ,
		CreatedAt: epoch, ReceivedAt: epoch.Add(time.Duration(seq) * time.Second),
		Body: fmt.Appendf(nil, "body-%d", seq)}
}

func testMessages(t *testing.T, h Harness) {
	s, ctx := h.New(t), ctxOf(t)
	seedTenants(t, s, "a", "b")
	seedAgent(t, s, "a", "ag")

	for _, seq := range []uint64{1, 2, 5} {
		dup, err := s.CommitMessage(ctx, message("a", "ag", seq, "drift_report"))
		must(t, err)
		if dup {
			t.Fatalf("seq %d reported duplicate", seq)
		}
	}
	for _, seq := range []uint64{5, 3, 1} {
		m := message("a", "ag", seq, "drift_report")
		m.Body = []byte("resent")
		dup, err := s.CommitMessage(ctx, m)
		must(t, err)
		if !dup {
			t.Errorf("seq %d after 5: duplicate = false", seq)
		}
	}
	_, err := s.CommitMessage(ctx, message("b", "ag", 9, "heartbeat"))
	wantErr(t, "agent in wrong tenant", err, store.ErrNotFound)
	_, err = s.CommitMessage(ctx, message("a", "ghost", 1, "heartbeat"))
	wantErr(t, "unknown agent", err, store.ErrNotFound)

	a, err := s.GetAgent(ctx, "ag")
	must(t, err)
	if a.AckedSeq != 5 || !a.Online || !a.LastSeen.Equal(epoch.Add(5*time.Second)) {
		t.Errorf("agent after commits: acked %d online %v last seen %v", a.AckedSeq, a.Online,
			a.LastSeen)
	}

	msgs, err := s.ListMessages(ctx, "a", "ag", 0, 0)
	must(t, err)
	if seqs := seqsOf(msgs); !slices.Equal(seqs, []uint64{1, 2, 5}) {
		t.Fatalf("ListMessages = %v", seqs)
	}
	if string(msgs[2].Body) != "body-5" || msgs[2].Type != "drift_report" ||
		!msgs[2].CreatedAt.Equal(epoch) {
		t.Errorf("message 5 = %+v (a duplicate overwrote it?)", msgs[2])
	}
	msgs, err = s.ListMessages(ctx, "a", "ag", 1, 1)
	must(t, err)
	if seqs := seqsOf(msgs); !slices.Equal(seqs, []uint64{2}) {
		t.Errorf("ListMessages after 1 limit 1 = %v", seqs)
	}
	msgs, err = s.ListMessages(ctx, "b", "ag", 0, 0)
	must(t, err)
	if len(msgs) != 0 {
		t.Errorf("messages leaked across tenants: %v", seqsOf(msgs))
	}
}

// testMessageBatches commits several messages of one agent at once: new ones are stored
// in order, duplicates (of earlier commits or within the batch) are reported and change
// nothing, and a batch naming two agents, or none, is refused without writing.
func testMessageBatches(t *testing.T, h Harness) {
	s, ctx := h.New(t), ctxOf(t)
	seedTenants(t, s, "a")
	seedAgent(t, s, "a", "ag")
	seedAgent(t, s, "a", "other")
	_, err := s.CommitMessage(ctx, message("a", "ag", 2, "heartbeat"))
	must(t, err)

	batch := []store.Message{message("a", "ag", 1, "heartbeat"), message("a", "ag", 3,
		"heartbeat"), message("a", "ag", 3, "drift_report"), message("a", "ag", 4, "heartbeat")}
	dups, err := s.CommitMessages(ctx, batch)
	must(t, err)
	if want := []bool{true, false, true, false}; !slices.Equal(dups, want) {
		t.Errorf("duplicates = %v, want %v", dups, want)
	}
	dups, err = s.CommitMessages(ctx, batch[:2])
	must(t, err)
	if want := []bool{true, true}; !slices.Equal(dups, want) {
		t.Errorf("batch again: duplicates = %v, want %v", dups, want)
	}

	mixed := []store.Message{message("a", "ag", 5, "heartbeat"),
		message("a", "other", 5, "heartbeat")}
	if _, err := s.CommitMessages(ctx, mixed); err == nil {
		t.Error("a batch of two agents was accepted")
	}
	if _, err := s.CommitMessages(ctx, nil); err == nil {
		t.Error("an empty batch was accepted")
	}
	_, err = s.CommitMessages(ctx, []store.Message{message("a", "ghost", 1, "heartbeat")})
	wantErr(t, "unknown agent", err, store.ErrNotFound)

	msgs, err := s.ListMessages(ctx, "a", "ag", 0, 0)
	must(t, err)
	if seqs := seqsOf(msgs); !slices.Equal(seqs, []uint64{2, 3, 4}) {
		t.Fatalf("ListMessages = %v, want [2 3 4]", seqs)
	}
	if msgs[1].Type != "heartbeat" {
		t.Errorf("message 3 is a %s: the duplicate in the batch overwrote it", msgs[1].Type)
	}
	for _, id := range []string{"ag", "other"} {
		a, err := s.GetAgent(ctx, id)
		must(t, err)
		want := map[string]uint64{"ag": 4, "other": 0}[id]
		if a.AckedSeq != want {
			t.Errorf("%s acked %d, want %d", id, a.AckedSeq, want)
		}
	}
	a, err := s.GetAgent(ctx, "ag")
	must(t, err)
	if !a.LastSeen.Equal(epoch.Add(4 * time.Second)) {
		t.Errorf("last seen %v, want the newest message's receipt", a.LastSeen)
	}
}

func seqsOf(ms []store.Message) []uint64 {
	var seqs []uint64
	for _, m := range ms {
		seqs = append(seqs, m.Seq)
	}
	return seqs
}

// testMessagesConcurrent has many agents commit at once, each over two racing senders
// (a stream and its resend after a reconnect). Every sequence number must be stored
// exactly once and reported new exactly once.
func testMessagesConcurrent(t *testing.T, h Harness) {
	s, ctx := h.New(t), ctxOf(t)
	seedTenants(t, s, "a")
	const agents, perAgent = 16, 40
	newCount := make([][perAgent + 1]atomic.Int32, agents)
	for i := range agents {
		seedAgent(t, s, "a", fmt.Sprintf("ag-%02d", i))
	}

	var wg sync.WaitGroup
	errs := make(chan error, agents*2)
	for i := range agents {
		for range 2 {
			wg.Go(func() {
				id := fmt.Sprintf("ag-%02d", i)
				for seq := uint64(1); seq <= perAgent; seq++ {
					dup, err := s.CommitMessage(ctx, message("a", id, seq, "heartbeat"))
					if err != nil {
						errs <- err
						return
					}
					if !dup {
						newCount[i][seq].Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("commit: %v", err)
	}

	for i := range agents {
		id := fmt.Sprintf("ag-%02d", i)
		msgs, err := s.ListMessages(ctx, "a", id, 0, 0)
		must(t, err)
		if len(msgs) != perAgent {
			t.Errorf("%s: %d messages stored, want %d", id, len(msgs), perAgent)
		}
		for seq := 1; seq <= perAgent; seq++ {
			if n := newCount[i][seq].Load(); n != 1 {
				t.Errorf("%s seq %d reported new %d times", id, seq, n)
			}
		}
		a, err := s.GetAgent(ctx, id)
		must(t, err)
		if a.AckedSeq != perAgent {
			t.Errorf("%s acked %d, want %d", id, a.AckedSeq, perAgent)
		}
	}
}

func testReopen(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("store has no persistence to test")
	}
	s, ctx := h.New(t), ctxOf(t)
	seedTenants(t, s, "a")
	seedAgent(t, s, "a", "ag")
	must(t, s.CreateOperator(ctx, store.Operator{Name: "admin", Role: store.RoleAdmin}))
	tok := newToken("a", "t1", epoch)
	tok.UsesLeft = 2
	must(t, s.CreateToken(ctx, tok))
	_, err := s.RedeemToken(ctx, tok.Hash, netip.MustParseAddr("10.0.0.1"), epoch)
	must(t, err)
	_, err = s.CommitMessage(ctx, message("a", "ag", 1, "drift_report"))
	must(t, err)

	s = h.Reopen(t, s)

	_, err = s.GetTenant(ctx, "a")
	must(t, err)
	_, err = s.GetOperator(ctx, "admin")
	must(t, err)
	a, err := s.GetAgent(ctx, "ag")
	must(t, err)
	if a.AckedSeq != 1 {
		t.Errorf("acked seq after reopen = %d", a.AckedSeq)
	}
	msgs, err := s.ListMessages(ctx, "a", "ag", 0, 0)
	must(t, err)
	if len(msgs) != 1 || string(msgs[0].Body) != "body-1" {
		t.Errorf("messages after reopen = %+v", msgs)
	}
	if dup, err := s.CommitMessage(ctx, message("a", "ag", 1, "drift_report")); err != nil ||
		!dup {
		t.Errorf("resend after reopen: duplicate = %v, err = %v", dup, err)
	}
	red, err := s.RedeemToken(ctx, tok.Hash, netip.MustParseAddr("10.0.0.1"), epoch)
	must(t, err)
	if red.UsesLeft != 0 {
		t.Errorf("uses left after reopen and second use = %d", red.UsesLeft)
	}
}

func testPing(t *testing.T, h Harness) {
	s := h.New(t)
	must(t, s.Ping(ctxOf(t)))
}
