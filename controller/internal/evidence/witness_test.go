package evidence

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/pkg/evidence"
	"github.com/wardsec/ward/pkg/pki"
	"github.com/wardsec/ward/pkg/policysig"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// streams records what Witnesses sends, per agent.
type streams struct {
	mu   sync.Mutex
	sent map[string][]*wardv1.ConnectResponse
	gone map[string]bool
}

func (s *streams) Send(agentID string, m *wardv1.ConnectResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone[agentID] {
		return errors.New("not connected")
	}
	s.sent[agentID] = append(s.sent[agentID], m)
	return nil
}

func (s *streams) take(agentID string) []*wardv1.ConnectResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.sent[agentID]
	s.sent[agentID] = nil
	return out
}

// collector is a witness as the agent implements it, reduced to what the controller
// relies on: it checks the policy signature and the proof from its last head, and signs.
type collector struct {
	id     string
	key    crypto.Signer
	chain  [][]byte
	policy *ecdsa.PublicKey
	size   uint64
	head   evidence.Hash
}

func newCollector(t *testing.T, authority *ca.CA, policy *ecdsa.PublicKey, tenant,
	id string) *collector {
	t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, id)
	if err != nil {
		t.Fatal(err)
	}
	chain, _, err := authority.SignAgent(csr, tenant, id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &collector{id: id, key: key, chain: chain, policy: policy}
}

// answer checks m and returns the message the agent would send back.
func (c *collector) answer(t *testing.T, m *wardv1.ConnectResponse) *wardv1.ConnectRequest {
	t.Helper()
	p := m.GetCheckpoint()
	err := policysig.Verify(c.policy, "ward.v1.Checkpoint", policysig.Signed{
		PayloadType: p.GetPayloadType(), Payload: p.GetPayload(),
		Signature: p.GetSignature(), KeyID: p.GetKeyId()})
	if err != nil {
		t.Fatalf("checkpoint payload: %v", err)
	}
	var cp wardv1.Checkpoint
	if err := proto.Unmarshal(p.GetPayload(), &cp); err != nil {
		t.Fatal(err)
	}
	var head, chain evidence.Hash
	copy(head[:], cp.GetHeadHash())
	copy(chain[:], cp.GetFromHead())
	ws := &wardv1.WitnessSignature{Tenant: cp.GetTenant(), Size: cp.GetSize(),
		HeadHash: cp.GetHeadHash(), Certificates: c.chain}
	if c.size != 0 && (cp.GetFromSize() != c.size || chain != c.head) {
		ws.Inconsistency = "does not extend"
	}
	for _, l := range cp.GetLeafHashes() {
		var leaf evidence.Hash
		copy(leaf[:], l)
		chain = evidence.ChainHash(chain, leaf)
	}
	if chain != head {
		ws.Inconsistency = "proof does not reach the head"
	}
	if ws.Inconsistency == "" {
		text := evidence.Checkpoint{Tenant: cp.GetTenant(), Size: cp.GetSize(), Head: head,
			Time: cp.GetSignedAt().AsTime()}.Text()
		ws.Signature, _ = evidence.Sign(c.key, text)
		c.size, c.head = cp.GetSize(), head
	}
	return &wardv1.ConnectRequest{Seq: 1, CreatedAt: timestamppb.Now(),
		Body: &wardv1.ConnectRequest_WitnessSignature{WitnessSignature: ws}}
}

// collectorRoles are the session roles of a collector.
var collectorRoles = []string{"host", "collector"}

func collectorHello() *wardv1.Hello {
	return &wardv1.Hello{Host: &wardv1.HostFacts{Roles: []string{"host", "collector"}}}
}

func TestWitnessesSendCheckpointsInOrderAndStoreCountersignatures(t *testing.T) {
	e := newEnv(t, 1_000_000)
	ctx := context.Background()
	if err := ca.CreatePolicyKey(e.dir); err != nil {
		t.Fatal(err)
	}
	policy, err := ca.LoadPolicyKey(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	s := &streams{sent: map[string][]*wardv1.ConnectResponse{}, gone: map[string]bool{}}
	w := NewWitnesses(WitnessesConfig{Store: e.store, Signer: policy, Roots: e.ca.Roots(),
		Recorder: e.log, Log: testLog(t)})
	w.SetSender(s)
	e.cp.cfg.Published = w.Published
	col := newCollector(t, e.ca, policy.Public(), "clinic", "col-1")

	record := func(n int) {
		for i := 0; i < n; i++ {
			_, err := e.log.Record(ctx, Entry{Tenant: "clinic", Type: TypeCheckChanged,
				Actor: Actor{Kind: ActorAgent, ID: "a1"}, Subject: "a1/ssh"})
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.cp.Checkpoint(ctx, "clinic"); err != nil {
			t.Fatal(err)
		}
	}
	record(10)
	record(20) // two checkpoints before the collector connects

	// A host agent is no witness, whatever its Hello claims: only the session's roles
	// count.
	w.Connected(ctx, "clinic", "host-1", []string{"host"}, collectorHello())
	if got := s.take("host-1"); len(got) != 0 {
		t.Fatalf("host agent got %d checkpoints", len(got))
	}

	// A new collector starts at the newest checkpoint; then each new one follows with a
	// proof from the last it countersigned.
	w.Connected(ctx, "clinic", col.id, collectorRoles, collectorHello())
	for round := 0; round < 3; round++ {
		got := s.take(col.id)
		if len(got) != 1 {
			t.Fatalf("round %d: %d checkpoints sent, want 1", round, len(got))
		}
		w.Committed(ctx, "clinic", col.id, col.answer(t, got[0]))
		record(5)
	}
	if got := s.take(col.id); len(got) != 1 {
		t.Fatalf("after the rounds: %d checkpoints waiting", len(got))
	}

	ws, err := e.store.ListWitnesses(ctx, "clinic", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 3 {
		t.Fatalf("%d countersignatures stored, want 3", len(ws))
	}
	bundle, sum := e.export(t, ExportQuery{Tenant: "clinic"})
	rep, err := bundle.Verify(evidence.VerifyOptions{Roots: e.ca.Roots()})
	if err != nil {
		t.Fatalf("bundle with witnesses: %v", err)
	}
	if rep.Witnesses[col.id] != 3 || sum.Witnesses != 3 {
		t.Fatalf("report witnesses %v, summary %d", rep.Witnesses, sum.Witnesses)
	}
}

func TestWitnessesRefuseForgedOrForeignSignaturesAndRecordRefusals(t *testing.T) {
	e := newEnv(t, 1_000_000)
	ctx := context.Background()
	if err := ca.CreatePolicyKey(e.dir); err != nil {
		t.Fatal(err)
	}
	policy, _ := ca.LoadPolicyKey(e.dir)
	s := &streams{sent: map[string][]*wardv1.ConnectResponse{}, gone: map[string]bool{}}
	w := NewWitnesses(WitnessesConfig{Store: e.store, Signer: policy, Roots: e.ca.Roots(),
		Recorder: e.log, Log: testLog(t)})
	w.SetSender(s)
	for i := 0; i < 3; i++ {
		e.log.Record(ctx, Entry{Tenant: "clinic", Type: TypeCheckChanged,
			Actor: Actor{Kind: ActorAgent, ID: "a1"}, Subject: "x"})
	}
	cp, err := e.cp.Checkpoint(ctx, "clinic")
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector(t, e.ca, policy.Public(), "clinic", "col-1")
	other := newCollector(t, e.ca, policy.Public(), "other", "col-9")
	w.Connected(ctx, "clinic", col.id, collectorRoles, collectorHello())
	good := col.answer(t, s.take(col.id)[0]).GetWitnessSignature()
	at := time.Now()

	tests := []struct {
		name  string
		agent string
		ws    func() *wardv1.WitnessSignature
		want  string
	}{
		{"forged signature", col.id, func() *wardv1.WitnessSignature {
			ws := proto.Clone(good).(*wardv1.WitnessSignature)
			ws.Signature[len(ws.Signature)-1] ^= 1
			return ws
		}, "signature"},
		{"another agent's certificate", "col-2", func() *wardv1.WitnessSignature {
			return good
		}, "does not name the agent"},
		{"certificate of another tenant", col.id, func() *wardv1.WitnessSignature {
			ws := proto.Clone(good).(*wardv1.WitnessSignature)
			ws.Certificates = other.chain
			return ws
		}, "does not name the agent"},
		{"no certificate", col.id, func() *wardv1.WitnessSignature {
			ws := proto.Clone(good).(*wardv1.WitnessSignature)
			ws.Certificates = nil
			return ws
		}, "without a certificate"},
		{"unknown checkpoint", col.id, func() *wardv1.WitnessSignature {
			ws := proto.Clone(good).(*wardv1.WitnessSignature)
			ws.Size = cp.Size + 7
			return ws
		}, "no checkpoint"},
		{"other head", col.id, func() *wardv1.WitnessSignature {
			ws := proto.Clone(good).(*wardv1.WitnessSignature)
			ws.HeadHash = make([]byte, 32)
			return ws
		}, "contradicts"},
		{"other tenant", col.id, func() *wardv1.WitnessSignature {
			ws := proto.Clone(good).(*wardv1.WitnessSignature)
			ws.Tenant = "other"
			return ws
		}, "tenant"},
		{"expired certificate", col.id, func() *wardv1.WitnessSignature { return good },
			"certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			when := at
			if tt.name == "expired certificate" {
				when = at.Add(48 * time.Hour)
			}
			err := w.Store(ctx, "clinic", tt.agent, tt.ws(), when)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Store = %v, want an error with %q", err, tt.want)
			}
		})
	}
	if ws, _ := e.store.ListWitnesses(ctx, "clinic", 0); len(ws) != 0 {
		t.Fatalf("%d bad signatures stored", len(ws))
	}
	if err := w.Store(ctx, "clinic", col.id, good, at); err != nil {
		t.Fatalf("good signature: %v", err)
	}

	// A refusal is recorded in the log, naming the witness.
	head, _ := e.store.EvidenceHead(ctx, "clinic")
	w.Committed(ctx, "clinic", col.id, &wardv1.ConnectRequest{Seq: 2,
		Body: &wardv1.ConnectRequest_WitnessSignature{WitnessSignature: &wardv1.WitnessSignature{
			Tenant: "clinic", Size: cp.Size, Inconsistency: "history rewritten"}}})
	recs, _ := e.store.ListEvidence(ctx, "clinic", head.Size, 0)
	if len(recs) != 1 {
		t.Fatalf("%d records after the refusal, want 1", len(recs))
	}
	r, _ := evidence.ParseBody(recs[0].Body)
	if r.Type != TypeWitnessRefused || r.Actor.ID != col.id ||
		!strings.Contains(string(r.Data), "history rewritten") {
		t.Fatalf("refusal record %s", recs[0].Body)
	}
}
