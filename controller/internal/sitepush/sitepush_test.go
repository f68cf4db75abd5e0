package sitepush

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/wardsec/ward/controller/internal/adminapi/adminapitest"
	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
	"github.com/wardsec/ward/pkg/policysig"
	"github.com/wardsec/ward/pkg/site"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*defaultPolicy[...]).processItems"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*Cache[...]).processItems"),
	)
}

// streams stands in for the agent streams of the connected agents.
type streams struct {
	mu        sync.Mutex
	connected map[string]bool
	sent      map[string][]*wardv1.SignedPayload
}

func (s *streams) Send(agent string, m *wardv1.ConnectResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connected[agent] {
		return fmt.Errorf("%s: not connected", agent)
	}
	s.sent[agent] = append(s.sent[agent], m.GetSiteConfig())
	return nil
}

func (s *streams) got(agent string) []*wardv1.SignedPayload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*wardv1.SignedPayload(nil), s.sent[agent]...)
}

// open verifies a sent payload with the policy key and returns its configuration.
func open(t *testing.T, key *ca.PolicyKey, sp *wardv1.SignedPayload) (
	*wardv1.SiteConfigUpdate, *site.Config) {
	t.Helper()
	err := policysig.Verify(key.Public(), PayloadType, policysig.Signed{
		PayloadType: sp.GetPayloadType(), Payload: sp.GetPayload(),
		Signature: sp.GetSignature(), KeyID: sp.GetKeyId()})
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	var u wardv1.SiteConfigUpdate
	if err := proto.Unmarshal(sp.GetPayload(), &u); err != nil {
		t.Fatal(err)
	}
	c, err := site.Parse(u.GetConfigJson())
	if err != nil {
		t.Fatalf("collector.json: %v", err)
	}
	return &u, c
}

func TestCollectorsGetTheSiteConfiguration(t *testing.T) {
	ctx := context.Background()
	st, err := badger.Open(t.TempDir(), adminapitest.Log(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateTenant(ctx, store.Tenant{ID: "t1"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := ca.CreatePolicyKey(dir); err != nil {
		t.Fatal(err)
	}
	key, err := ca.LoadPolicyKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := &streams{connected: map[string]bool{"c1": true, "h1": true, "c2": true},
		sent: map[string][]*wardv1.SignedPayload{}}
	p := &Publisher{Store: st, Signer: key, Sender: s, Log: adminapitest.Log(t)}

	// Connecting before any configuration is stored sends nothing.
	p.Connected(ctx, "t1", "c1", []string{"host", "collector"}, nil)
	p.Connected(ctx, "t1", "h1", []string{"host"}, nil)
	if len(s.got("c1")) != 0 {
		t.Fatal("sent a configuration that does not exist")
	}

	// An operator sets one: the connected collector gets it, the plain agent does not.
	first := site.Config{Subnets: []string{"10.9.0.0/24"},
		PassiveSubnets: []string{"10.9.1.0/24"},
		SNMP: []site.SNMPCredential{{Version: "v3", User: "ward", AuthProtocol: "SHA",
			AuthPassphrase: "auth-secret-1", PrivProtocol: "AES",
			PrivPassphrase: "priv-secret-1"}}}
	first.Normalize()
	updated := time.Date(2026, 3, 5, 9, 0, 0, 0, time.UTC)
	if err := st.PutSiteConfig(ctx, "t1", store.SiteConfig{Config: first,
		UpdatedAt: updated, UpdatedBy: "tech"}); err != nil {
		t.Fatal(err)
	}
	if err := p.PublishSiteConfig(ctx, "t1", first); err != nil {
		t.Fatal(err)
	}
	if len(s.got("h1")) != 0 {
		t.Fatal("a plain agent got the site configuration")
	}
	sent := s.got("c1")
	if len(sent) != 1 {
		t.Fatalf("collector got %d configurations, want 1", len(sent))
	}
	u, c := open(t, key, sent[0])
	if u.GetTenant() != "t1" || c.Subnets[0] != "10.9.0.0/24" ||
		c.PassiveSubnets[0] != "10.9.1.0/24" || c.SNMP[0].PrivPassphrase != "priv-secret-1" {
		t.Fatalf("update for %s: %+v", u.GetTenant(), c)
	}

	// A collector that connects later gets the stored one, dated when it was set.
	p.Connected(ctx, "t1", "c2", []string{"collector"}, nil)
	sent = s.got("c2")
	if len(sent) != 1 {
		t.Fatalf("late collector got %d configurations, want 1", len(sent))
	}
	u, c = open(t, key, sent[0])
	if !u.GetPublishedAt().AsTime().Equal(updated) || c.Subnets[0] != "10.9.0.0/24" {
		t.Fatalf("late update %v: %+v", u.GetPublishedAt().AsTime(), c)
	}

	// A collector gone offline is an error for the operator's log, not a stop.
	s.mu.Lock()
	s.connected["c1"] = false
	s.mu.Unlock()
	if err := p.PublishSiteConfig(ctx, "t1", first); err == nil {
		t.Fatal("no error for a collector that could not be reached")
	}
	if len(s.got("c2")) != 2 {
		t.Fatal("the reachable collector did not get the update")
	}
}

// targets hands out fixed poll targets per collector.
type targets struct {
	mu  sync.Mutex
	per map[string][]site.PollTarget
}

func (ts *targets) PollTargets(_ context.Context, _, collector string) ([]site.PollTarget,
	error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.per[collector], nil
}

func (ts *targets) set(collector string, t ...site.PollTarget) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.per[collector] = t
}

// TestEachCollectorGetsItsPollTargets: every collector's configuration carries its own
// poll targets, and a completed scan that changes them sends the configuration again.
func TestEachCollectorGetsItsPollTargets(t *testing.T) {
	ctx := context.Background()
	st, err := badger.Open(t.TempDir(), adminapitest.Log(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateTenant(ctx, store.Tenant{ID: "t1"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := ca.CreatePolicyKey(dir); err != nil {
		t.Fatal(err)
	}
	key, err := ca.LoadPolicyKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	sw1 := site.PollTarget{Device: "mac:00:00:0c:00:00:01", Address: "10.9.0.2"}
	sw2 := site.PollTarget{Device: "mac:00:00:0c:00:00:02", Address: "10.9.0.3"}
	tg := &targets{per: map[string][]site.PollTarget{"c1": {sw1}, "c2": {sw2}}}
	s := &streams{connected: map[string]bool{"c1": true, "c2": true, "h1": true},
		sent: map[string][]*wardv1.SignedPayload{}}
	p := &Publisher{Store: st, Signer: key, Sender: s, Targets: tg, Log: adminapitest.Log(t)}
	cfg := site.Config{Subnets: []string{"10.9.0.0/24"},
		SNMP: []site.SNMPCredential{{Version: "v2c", Community: "c"}}}
	cfg.Normalize()
	if err := st.PutSiteConfig(ctx, "t1", store.SiteConfig{Config: cfg}); err != nil {
		t.Fatal(err)
	}
	p.Connected(ctx, "t1", "c1", []string{"collector"}, nil)
	p.Connected(ctx, "t1", "c2", []string{"collector"}, nil)
	p.Connected(ctx, "t1", "h1", []string{"host"}, nil)

	for agent, want := range map[string]site.PollTarget{"c1": sw1, "c2": sw2} {
		sent := s.got(agent)
		if len(sent) != 1 {
			t.Fatalf("%s got %d configurations, want 1", agent, len(sent))
		}
		if _, c := open(t, key, sent[0]); len(c.Poll.Targets) != 1 || c.Poll.Targets[0] != want {
			t.Errorf("%s's targets = %v, want %v", agent, c.Poll.Targets, want)
		}
	}

	scan := func(complete bool) *wardv1.ConnectRequest {
		return &wardv1.ConnectRequest{Seq: 5, Body: &wardv1.ConnectRequest_DiscoveryReport{
			DiscoveryReport: &wardv1.DiscoveryReport{ScanId: "s2", Complete: complete}}}
	}
	p.Committed(ctx, "t1", "c1", scan(true)) // targets unchanged
	tg.set("c1", sw1, sw2)
	p.Committed(ctx, "t1", "c1", scan(false)) // not complete yet
	p.Committed(ctx, "t1", "h1", scan(true))  // not a collector
	if n := len(s.got("c1")); n != 1 || len(s.got("h1")) != 0 {
		t.Fatalf("c1 got %d configurations, h1 %d; want 1 and none yet", n,
			len(s.got("h1")))
	}
	p.Committed(ctx, "t1", "c1", scan(true))
	sent := s.got("c1")
	if len(sent) != 2 {
		t.Fatalf("c1 got %d configurations after its targets changed, want 2", len(sent))
	}
	if _, c := open(t, key, sent[1]); len(c.Poll.Targets) != 2 {
		t.Errorf("c1's new targets = %v", c.Poll.Targets)
	}
}

// TestSessionRolesNotTheHello sends the configuration by the session's roles alone: an
// agent whose Hello claims collector without the role gets nothing, and a collector that
// comes back without the role gets no later configuration.
func TestSessionRolesNotTheHello(t *testing.T) {
	ctx := context.Background()
	st, err := badger.Open(t.TempDir(), adminapitest.Log(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateTenant(ctx, store.Tenant{ID: "t1"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := ca.CreatePolicyKey(dir); err != nil {
		t.Fatal(err)
	}
	key, err := ca.LoadPolicyKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := site.Config{Subnets: []string{"10.9.0.0/24"},
		SNMP: []site.SNMPCredential{{Version: "v2c", Community: "clinic-ro"}}}
	c.Normalize()
	if err := st.PutSiteConfig(ctx, "t1", store.SiteConfig{Config: c,
		UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s := &streams{connected: map[string]bool{"h1": true, "c1": true},
		sent: map[string][]*wardv1.SignedPayload{}}
	p := &Publisher{Store: st, Signer: key, Sender: s, Log: adminapitest.Log(t)}
	claims := &wardv1.Hello{Host: &wardv1.HostFacts{Roles: []string{"host", "collector"}}}

	p.Connected(ctx, "t1", "h1", []string{"host"}, claims)
	p.Connected(ctx, "t1", "c1", []string{"host", "collector"}, claims)
	if len(s.got("h1")) != 0 || len(s.got("c1")) != 1 {
		t.Fatalf("sent %d to the host agent, %d to the collector; want 0 and 1",
			len(s.got("h1")), len(s.got("c1")))
	}

	p.Connected(ctx, "t1", "c1", []string{"host"}, claims) // its roles were narrowed
	if err := p.PublishSiteConfig(ctx, "t1", c); err != nil {
		t.Fatal(err)
	}
	if len(s.got("h1")) != 0 || len(s.got("c1")) != 1 {
		t.Errorf("after narrowing: sent %d to the host agent, %d to the former collector;"+
			" want 0 and 1", len(s.got("h1")), len(s.got("c1")))
	}
}
