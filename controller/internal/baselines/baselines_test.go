package baselines

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
	"github.com/wardsec/ward/pkg/baseline"
	"github.com/wardsec/ward/pkg/policysig"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*defaultPolicy[...]).processItems"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*Cache[...]).processItems"),
	)
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

type sender struct {
	mu   sync.Mutex
	sent map[string][]*wardv1.SignedPayload
}

func (s *sender) Send(agent string, m *wardv1.ConnectResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent[agent] = append(s.sent[agent], m.GetBaselineUpdate())
	return nil
}

func setup(t *testing.T) (*Manager, *sender, *ca.PolicyKey, *badger.Store) {
	dir := t.TempDir()
	if err := ca.CreatePolicyKey(dir); err != nil {
		t.Fatal(err)
	}
	key, err := ca.LoadPolicyKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(tWriter{t}, nil))
	st, err := badger.Open(dir+"/db", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	st.CreateTenant(ctx, store.Tenant{ID: "t1"})
	st.CreateAgent(ctx, store.Agent{ID: "a1", Tenant: "t1"})
	st.CreateAgent(ctx, store.Agent{ID: "a2", Tenant: "t1"})
	snd := &sender{sent: map[string][]*wardv1.SignedPayload{}}
	m, err := New(Config{Store: st, Signer: key, Sender: snd, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return m, snd, key, st
}

func TestNewTenantStartsOnHIPAAAndCatalog(t *testing.T) {
	m, _, _, _ := setup(t)
	ctx := context.Background()
	b, doc, err := m.Current(ctx, "t1")
	if err != nil || b.ID != "hipaa-v1" || !bytes.Equal(doc, baseline.ShippedDocument()) {
		t.Fatalf("Current = %v, %v", b, err)
	}
	rb, ok, err := m.RunbookFor(ctx, "t1", "SSH-002")
	if err != nil || !ok || rb.ID != "RB-SSH-001" || rb.RequiresApproval || len(rb.Steps) == 0 {
		t.Errorf("RunbookFor(SSH-002) = %+v, %v, %v", rb, ok, err)
	}
	if m.Severity(ctx, "t1", "SSH-002") != "high" {
		t.Errorf("severity = %q", m.Severity(ctx, "t1", "SSH-002"))
	}
	if m.Excluded(ctx, "t1", "SSH-002") {
		t.Error("excluded before any exclusion")
	}
	if err := m.Exclude(ctx, "t1", "SSH-002", "", "alice"); err == nil {
		t.Error("exclusion without a reason accepted")
	}
	m.Exclude(ctx, "t1", "SSH-002", "jump host only", "alice")
	if !m.Excluded(ctx, "t1", "SSH-002") {
		t.Error("not excluded after Exclude")
	}
}

func TestPushRefusesBrokenAndPublishesSigned(t *testing.T) {
	m, snd, key, st := setup(t)
	ctx := context.Background()
	shipped := string(baseline.ShippedDocument())

	broken := strings.Replace(shipped, "version: 1.0.0", "version: 1.0.1\nbogus: 1", 1)
	_, err := m.Push(ctx, "t1", "mine.yaml", []byte(broken), "alice")
	if err == nil || !strings.Contains(err.Error(), "mine.yaml:") {
		t.Fatalf("broken push: %v, want a file:line error", err)
	}
	b, _, _ := m.Current(ctx, "t1")
	if b.Version != "1.0.0" {
		t.Errorf("after a refused push: version %s, want 1.0.0", b.Version)
	}
	if _, err := m.Push(ctx, "t1", "same.yaml", []byte(shipped), "alice"); err == nil {
		t.Error("push of the current version accepted")
	}

	next := strings.Replace(shipped, "version: 1.0.0", "version: 1.1.0", 1)
	if _, err := m.Push(ctx, "t1", "next.yaml", []byte(next), "alice"); err != nil {
		t.Fatal(err)
	}
	if b, _, _ := m.Current(ctx, "t1"); b.Version != "1.1.0" {
		t.Errorf("current %s, want 1.1.0", b.Version)
	}
	for _, a := range []string{"a1", "a2"} {
		got := snd.sent[a]
		if len(got) != 1 {
			t.Fatalf("%s got %d updates, want 1", a, len(got))
		}
		sp := got[0]
		err := policysig.Verify(key.Public(), PayloadType, policysig.Signed{
			PayloadType: sp.GetPayloadType(), Payload: sp.GetPayload(),
			Signature: sp.GetSignature(), KeyID: sp.GetKeyId()})
		if err != nil {
			t.Fatal(err)
		}
		var spec wardv1.BaselineSpec
		proto.Unmarshal(sp.GetPayload(), &spec)
		if spec.GetVersion() != "1.1.0" || spec.GetTenant() != "t1" {
			t.Errorf("spec = %v", &spec)
		}
	}

	// An agent reporting the old version is offered the new one; the version is tracked.
	if err := m.Reported(ctx, "t1", "a1", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if len(snd.sent["a1"]) != 2 {
		t.Errorf("old version: %d updates sent, want 2", len(snd.sent["a1"]))
	}
	m.Reported(ctx, "t1", "a1", "1.1.0")
	if len(snd.sent["a1"]) != 2 {
		t.Errorf("current version: %d updates sent, want still 2", len(snd.sent["a1"]))
	}
	vs, _ := st.AgentBaselines(ctx, "t1")
	if vs["a1"] != "1.1.0" {
		t.Errorf("tracked %v", vs)
	}
}
