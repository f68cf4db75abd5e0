package evidence

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/evidence"
	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// WitnessRole is the agent role that witnesses its tenant's checkpoints.
const WitnessRole = store.AgentRoleCollector

// MaxProofLeaves bounds the leaf hashes of one checkpoint message (about 34 bytes each, so
// well under the agent's 4 MiB receive limit). A larger step between two checkpoints is
// not sent; the next checkpoint, Every records later, is.
const MaxProofLeaves = 100_000

// ErrContradicts means a witness countersigned another head for a checkpoint than the
// one stored: the log changed after the witness saw it.
var ErrContradicts = errors.New("witness countersignature contradicts the log")

// Sender writes a message on an agent's open stream without blocking
// (agentapi.Server.Send).
type Sender interface {
	Send(agentID string, m *wardv1.ConnectResponse) error
}

// PayloadSigner signs what the controller sends agents with the policy key they pinned
// (ca.PolicyKey).
type PayloadSigner interface {
	Sign(payloadType string, payload []byte) (*wardv1.SignedPayload, error)
}

// WitnessesConfig configures Witnesses.
type WitnessesConfig struct {
	Store  store.Evidence // required
	Signer PayloadSigner  // required: signs the checkpoint payloads
	// Roots are the CA roots that witness certificates must chain to. Required.
	Roots *x509.CertPool
	// Recorder gets a TypeWitnessRefused record for each refusal; nil: Discard.
	Recorder Recorder
	Log      *slog.Logger     // nil discards
	Clock    func() time.Time // nil means time.Now
}

// Witnesses sends each tenant's checkpoints to its collector agents and stores their
// countersignatures. Each collector gets the checkpoints in order, one at a time: the
// first after the newest it countersigned (or, for a new collector, the newest), with the
// leaf hashes that link the two, and the next when its answer is committed. Its
// Connected and Committed methods are an agentapi.Observer; Published is the
// Checkpointer's hook. Safe for concurrent use.
type Witnesses struct {
	cfg WitnessesConfig

	senderMu sync.RWMutex
	sender   Sender // set by SetSender; nil: nothing is sent

	mu     sync.Mutex                  // guards agents
	agents map[string]*witnessProgress // connected collectors by agent id
}

// witnessProgress is where one connected collector stands.
type witnessProgress struct {
	tenant    string
	witnessed uint64 // newest checkpoint size it countersigned (0: none)
	sent      uint64 // newest checkpoint size sent and not answered yet (0: none)
}

// NewWitnesses returns Witnesses. It panics when a required field is missing.
func NewWitnesses(cfg WitnessesConfig) *Witnesses {
	if cfg.Store == nil || cfg.Signer == nil || cfg.Roots == nil {
		panic("evidence: NewWitnesses: Store, Signer and Roots are required")
	}
	if cfg.Recorder == nil {
		cfg.Recorder = Discard
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Witnesses{cfg: cfg, agents: map[string]*witnessProgress{}}
}

// SetSender sets the streams checkpoints are sent on (the AgentService, which is built
// after the evidence log). Until it is set nothing is sent.
func (w *Witnesses) SetSender(s Sender) {
	w.senderMu.Lock()
	w.sender = s
	w.senderMu.Unlock()
}

// Connected starts witnessing for a collector that has just connected (a session whose
// roles include WitnessRole): it learns the newest checkpoint the collector countersigned
// and sends the next one. Another agent is not, or no longer, a witness.
func (w *Witnesses) Connected(ctx context.Context, tenant, agentID string, roles []string,
	_ *wardv1.Hello) {
	if !slices.Contains(roles, WitnessRole) {
		w.mu.Lock()
		delete(w.agents, agentID)
		w.mu.Unlock()
		return
	}
	witnessed, err := w.newestWitnessed(ctx, tenant, agentID)
	if err != nil {
		w.cfg.Log.Error("witness: load countersignatures", logkey.Agent, agentID,
			logkey.Error, err)
		return
	}
	w.mu.Lock()
	w.agents[agentID] = &witnessProgress{tenant: tenant, witnessed: witnessed}
	w.mu.Unlock()
	w.sendNext(ctx, agentID)
}

// newestWitnessed returns the size of the newest checkpoint agentID countersigned.
func (w *Witnesses) newestWitnessed(ctx context.Context, tenant, agentID string) (
	uint64, error) {
	ws, err := w.cfg.Store.ListWitnesses(ctx, tenant, 0)
	if err != nil {
		return 0, err
	}
	var newest uint64
	for _, x := range ws {
		if x.Agent == agentID && x.Size > newest {
			newest = x.Size
		}
	}
	return newest, nil
}

// Committed stores a committed witness signature, or records a refusal, and sends the
// collector its next checkpoint. Other messages are ignored.
func (w *Witnesses) Committed(ctx context.Context, tenant, agentID string,
	m *wardv1.ConnectRequest) {
	ws := m.GetWitnessSignature()
	if ws == nil {
		return
	}
	log := w.cfg.Log.With(logkey.Tenant, tenant, logkey.Agent, agentID, "size", ws.GetSize())
	if ws.GetInconsistency() != "" {
		w.refused(ctx, tenant, agentID, ws, log)
		return // nothing more is sent to it until it reconnects
	}
	signedAt := w.cfg.Clock()
	if m.GetCreatedAt() != nil {
		signedAt = m.GetCreatedAt().AsTime()
	}
	err := w.Store(ctx, tenant, agentID, ws, signedAt)
	switch {
	case errors.Is(err, ErrContradicts):
		w.refused(ctx, tenant, agentID, &wardv1.WitnessSignature{Tenant: tenant,
			Size: ws.GetSize(), Inconsistency: err.Error()}, log)
	case err != nil:
		log.Warn("witness signature not stored", logkey.Error, err)
		return
	default:
		log.Debug("checkpoint witnessed")
	}

	w.mu.Lock()
	p := w.agents[agentID]
	switch {
	case p == nil:
	case ws.GetSize() > p.witnessed: // newer than we knew: prove the next from it
		p.witnessed, p.sent = ws.GetSize(), 0
	case ws.GetSize() >= p.sent:
		p.sent = 0
	}
	w.mu.Unlock()
	w.sendNext(ctx, agentID)
}

// Store verifies a witness signature of agentID (of tenant) against the stored
// checkpoint and stores it. signedAt is when the agent made it: its certificate must
// have been valid then and must chain to the roots. Errors say what is wrong.
func (w *Witnesses) Store(ctx context.Context, tenant, agentID string,
	ws *wardv1.WitnessSignature, signedAt time.Time) error {
	if ws.GetTenant() != tenant {
		return fmt.Errorf("witness signature for tenant %q", ws.GetTenant())
	}
	cp, err := w.checkpoint(ctx, tenant, ws.GetSize())
	if err != nil {
		return err
	}
	if string(ws.GetHeadHash()) != string(cp.Head[:]) {
		return fmt.Errorf("%w: the witness countersigned head %x of checkpoint %d, the "+
			"log holds %s", ErrContradicts, ws.GetHeadHash(), cp.Size, cp.Head)
	}
	if err := w.checkCertificates(ws.GetCertificates(), tenant, agentID, signedAt); err != nil {
		return err
	}
	leaf, _ := x509.ParseCertificate(ws.GetCertificates()[0]) // parsed in checkCertificates
	text := evidence.Checkpoint{Tenant: tenant, Size: cp.Size, Head: cp.Head,
		Time: cp.Time}.Text()
	if err := evidence.VerifySignature(leaf.PublicKey, text, ws.GetSignature()); err != nil {
		return fmt.Errorf("witness signature of checkpoint %d: %w", cp.Size, err)
	}
	return w.cfg.Store.PutWitness(ctx, store.EvidenceWitness{Tenant: tenant, Size: cp.Size,
		Head: cp.Head, Agent: agentID, Time: signedAt.UTC(), Signature: ws.GetSignature(),
		CertDER: ws.GetCertificates()})
}

// checkCertificates checks that chain (DER, leaf first) names agentID of tenant and
// chains to the roots at time at.
func (w *Witnesses) checkCertificates(chain [][]byte, tenant, agentID string,
	at time.Time) error {
	if len(chain) == 0 {
		return errors.New("witness signature without a certificate")
	}
	certs := make([]*x509.Certificate, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("witness certificate: %w", err)
		}
		certs[i] = c
	}
	id, err := identity.FromCertificate(certs[0])
	if err != nil || id.Kind != identity.KindAgent || id.Tenant != tenant || id.Name != agentID {
		return errors.New("witness certificate does not name the agent")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err = certs[0].Verify(x509.VerifyOptions{Roots: w.cfg.Roots, Intermediates: inter,
		CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("witness certificate: %w", err)
	}
	return nil
}

// checkpoint returns the stored checkpoint of tenant with the given size.
func (w *Witnesses) checkpoint(ctx context.Context, tenant string, size uint64) (
	store.EvidenceCheckpoint, error) {
	if size == 0 {
		return store.EvidenceCheckpoint{}, errors.New("no checkpoint of size 0")
	}
	cps, err := w.cfg.Store.ListCheckpoints(ctx, tenant, size-1)
	if err != nil {
		return store.EvidenceCheckpoint{}, err
	}
	if len(cps) == 0 || cps[0].Size != size {
		return store.EvidenceCheckpoint{}, fmt.Errorf("no checkpoint of size %d", size)
	}
	return cps[0], nil
}

// refused logs and records a witness's refusal: the log the controller holds contradicts
// the clinic's copy.
func (w *Witnesses) refused(ctx context.Context, tenant, agentID string,
	ws *wardv1.WitnessSignature, log *slog.Logger) {
	log.Error("evidence checkpoint REFUSED by the clinic's witness: the log contradicts "+
		"its copy", logkey.Reason, ws.GetInconsistency())
	_, err := w.cfg.Recorder.Record(ctx, Entry{Tenant: tenant, Type: TypeWitnessRefused,
		Actor: Actor{Kind: ActorAgent, ID: agentID}, Subject: agentID,
		Data: map[string]any{"size": ws.GetSize(), "reason": ws.GetInconsistency()}})
	if err != nil {
		log.Error("witness refusal not recorded", logkey.Error, err)
	}
}

// Published sends a new checkpoint to the tenant's connected collectors that are waiting
// for one.
func (w *Witnesses) Published(cp store.EvidenceCheckpoint) {
	w.mu.Lock()
	var ids []string
	for id, p := range w.agents {
		if p.tenant == cp.Tenant && p.sent == 0 {
			ids = append(ids, id)
		}
	}
	w.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range ids {
		w.sendNext(ctx, id)
	}
}

// sendNext sends agentID the first checkpoint after the newest it countersigned (the
// newest checkpoint when it countersigned none), unless one is on its way.
func (w *Witnesses) sendNext(ctx context.Context, agentID string) {
	w.mu.Lock()
	p, ok := w.agents[agentID]
	if !ok || p.sent != 0 {
		w.mu.Unlock()
		return
	}
	tenant, witnessed := p.tenant, p.witnessed
	w.mu.Unlock()

	cps, err := w.cfg.Store.ListCheckpoints(ctx, tenant, witnessed)
	if err != nil || len(cps) == 0 {
		if err != nil {
			w.cfg.Log.Warn("witness: list checkpoints", logkey.Tenant, tenant, logkey.Error, err)
		}
		return
	}
	next, from := cps[0], witnessed
	if witnessed == 0 {
		next = cps[len(cps)-1]
		from = next.Size // a new witness starts from the newest checkpoint
	}
	m, err := w.message(ctx, next, from)
	if err != nil {
		w.cfg.Log.Warn("witness: checkpoint not sent", logkey.Agent, agentID,
			"size", next.Size, logkey.Error, err)
		return
	}

	w.mu.Lock()
	if p, ok := w.agents[agentID]; !ok || p.sent != 0 {
		w.mu.Unlock()
		return // reconnected or already sent meanwhile
	}
	p.sent = next.Size
	w.mu.Unlock()

	w.senderMu.RLock()
	s := w.sender
	w.senderMu.RUnlock()
	if s == nil {
		return
	}
	if err := s.Send(agentID, m); err != nil {
		w.mu.Lock()
		delete(w.agents, agentID) // gone; Connected starts over
		w.mu.Unlock()
		w.cfg.Log.Debug("witness: checkpoint not sent", logkey.Agent, agentID,
			logkey.Error, err)
	}
}

// message builds the signed checkpoint payload for cp with a proof from record from.
func (w *Witnesses) message(ctx context.Context, cp store.EvidenceCheckpoint, from uint64) (
	*wardv1.ConnectResponse, error) {
	if cp.Size-from > MaxProofLeaves {
		return nil, fmt.Errorf("proof of %d leaves is over %d", cp.Size-from, MaxProofLeaves)
	}
	pc := &wardv1.Checkpoint{Tenant: cp.Tenant, Size: cp.Size,
		HeadHash: append([]byte(nil), cp.Head[:]...), SignedAt: timestamppb.New(cp.Time),
		Signature: cp.Signature, FromSize: from, FromHead: make([]byte, 32)}
	if from < cp.Size {
		after := from - min(from, 1) // include record from for its chain hash
		recs, err := w.cfg.Store.ListEvidence(ctx, cp.Tenant, after, int(cp.Size-after))
		if err != nil {
			return nil, err
		}
		if uint64(len(recs)) != cp.Size-after {
			return nil, fmt.Errorf("log has %d records after %d, want %d", len(recs), after,
				cp.Size-after)
		}
		if from > 0 {
			copy(pc.FromHead, recs[0].Hash[:])
			recs = recs[1:]
		}
		pc.LeafHashes = make([][]byte, len(recs))
		for i, r := range recs {
			leaf := sha256.Sum256(r.Body)
			pc.LeafHashes[i] = leaf[:]
		}
	} else {
		copy(pc.FromHead, cp.Head[:])
	}
	payload, err := proto.Marshal(pc)
	if err != nil {
		return nil, fmt.Errorf("checkpoint payload: %w", err)
	}
	signed, err := w.cfg.Signer.Sign(string(proto.MessageName(pc)), payload)
	if err != nil {
		return nil, err
	}
	return &wardv1.ConnectResponse{Body: &wardv1.ConnectResponse_Checkpoint{
		Checkpoint: signed}}, nil
}
