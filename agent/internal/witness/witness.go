// Package witness makes a collector agent a witness of its clinic's evidence log. The
// controller sends each signed checkpoint (tenant, size, head hash, time) together with a
// consistency proof: the leaf hashes of the records since the last checkpoint this witness
// countersigned. The witness recomputes the hash chain from its own last head through those
// leaves; only when it arrives at the new head does it countersign the checkpoint with the
// agent's key. Every checkpoint it accepts or refuses is first appended, durably, to the
// clinic's own copy (Copy), which an auditor reads with `ward-agent evidence checkpoints`.
//
// A history rewritten on the controller's side can no longer reach the head the witness
// holds, so every later checkpoint is refused and the refusal is reported to the
// controller (WitnessSignature.inconsistency) and kept in the copy.
package witness

import (
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wardsec/ward/pkg/evidence"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Config configures a Witness.
type Config struct {
	// Dir is the agent's state directory; the copy lives in Dir/CopyFile. Required.
	Dir string
	// Tenant is the agent's tenant: checkpoints of other tenants are refused. Required.
	Tenant string
	// KeyPair returns the agent's current key and certificate chain (it changes at
	// renewal). Required.
	KeyPair func() (tls.Certificate, error)
	// Log receives accepted and refused checkpoints; nil discards.
	Log *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Witness checks and countersigns checkpoints. Its methods are safe for concurrent use.
type Witness struct {
	cfg  Config
	copy *Copy

	mu   sync.Mutex // serialises Check: one checkpoint at a time extends the copy
	last *Entry     // newest accepted checkpoint, nil before the first
	byAt map[uint64]evidence.Hash
}

// Open reads the copy in cfg.Dir (creating nothing until the first checkpoint) and
// returns a Witness that continues from its newest accepted checkpoint.
func Open(cfg Config) (*Witness, error) {
	switch {
	case cfg.Dir == "":
		return nil, errors.New("witness: no state directory")
	case cfg.Tenant == "":
		return nil, errors.New("witness: no tenant")
	case cfg.KeyPair == nil:
		return nil, errors.New("witness: no key pair")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c, err := OpenCopy(cfg.Dir)
	if err != nil {
		return nil, err
	}
	w := &Witness{cfg: cfg, copy: c, byAt: map[uint64]evidence.Hash{}}
	entries, err := c.Entries()
	if err != nil {
		return nil, err
	}
	for i := range entries {
		w.remember(entries[i])
	}
	return w, nil
}

// remember indexes an entry of the copy; refused entries are kept but not indexed.
func (w *Witness) remember(e Entry) {
	if e.Refused != "" {
		return
	}
	h, err := evidence.ParseHash(e.Head)
	if err != nil {
		return
	}
	w.byAt[e.Size] = h
	if w.last == nil || e.Size >= w.last.Size {
		w.last = &e
	}
}

// checkpoint returns the checkpoint e holds.
func (e *Entry) checkpoint() evidence.Checkpoint {
	h, _ := evidence.ParseHash(e.Head) // parsed when the entry was remembered
	return evidence.Checkpoint{Tenant: e.Tenant, Size: e.Size, Head: h, Time: e.Time}
}

// Check verifies cp (already authenticated with the pinned policy key) against the copy
// and answers with a countersignature or a refusal (Inconsistency set, no signature). A
// checkpoint it cannot check (older than the newest in the copy and not in it, or sent
// without the proof from the copy's newest one) is answered with the countersignature of
// the copy's newest checkpoint, so that the controller learns where the witness stands.
// It returns nil when keeping the copy or signing fails (logged; the controller sends the
// checkpoint again on the next connection).
func (w *Witness) Check(cp *wardv1.Checkpoint) *wardv1.WitnessSignature {
	w.mu.Lock()
	defer w.mu.Unlock()

	head, herr := hashOf(cp.GetHeadHash())
	c := evidence.Checkpoint{Tenant: cp.GetTenant(), Size: cp.GetSize(), Head: head,
		Time: cp.GetSignedAt().AsTime().UTC()}
	log := w.cfg.Log.With(logkey.Tenant, c.Tenant, "size", c.Size)

	why, v := "", fresh
	switch {
	case c.Tenant != w.cfg.Tenant:
		why = fmt.Sprintf("checkpoint for tenant %q, this witness serves %q", c.Tenant,
			w.cfg.Tenant)
	case herr != nil || c.Size == 0 || cp.GetSignedAt() == nil:
		why = "malformed checkpoint (head, size or time)"
	default:
		why, v = w.consistency(cp, head)
	}
	switch {
	case why != "":
	case v == known:
		return w.sign(c, log) // seen and kept already: sign again
	case v == unprovable:
		// Tell the controller where this witness stands: it answers with the proof.
		log.Warn("checkpoint not witnessed: it comes without the records since this "+
			"clinic's newest checkpoint; countersigning that one again", "newest",
			w.last.Size)
		return w.sign(w.last.checkpoint(), log)
	}

	e := Entry{Tenant: c.Tenant, Size: c.Size, Head: head.String(), Time: c.Time,
		ControllerSignature: cp.GetSignature(), Received: w.cfg.Now().UTC(), Refused: why}
	if why != "" {
		if err := w.copy.Append(e); err != nil {
			log.Error("witness copy: keep refusal", logkey.Error, err)
		}
		log.Error("checkpoint refused: inconsistent with the clinic's copy",
			logkey.Reason, why)
		return &wardv1.WitnessSignature{Tenant: c.Tenant, Size: c.Size,
			HeadHash: cp.GetHeadHash(), Inconsistency: why}
	}

	ws := w.sign(c, log)
	if ws == nil {
		return nil
	}
	e.WitnessSignature = ws.GetSignature()
	if err := w.copy.Append(e); err != nil {
		log.Error("witness copy: keep checkpoint; not countersigned", logkey.Error, err)
		return nil
	}
	w.remember(e)
	log.Info("checkpoint witnessed")
	return ws
}

// verdict is what consistency found when it found nothing wrong.
type verdict int

const (
	fresh      verdict = iota // extends the copy: countersign and keep it
	known                     // the copy holds it already: countersign again
	unprovable                // cannot be checked: neither signed nor refused
)

// consistency checks cp against the copy. It returns why cp is refused ("" when it is
// not) and otherwise what to do with it. A checkpoint older than the newest witnessed
// one that the copy does not hold is unprovable, and so is one sent without a proof (as
// to a new witness) while the copy holds older ones: the controller may not yet have
// stored this witness's last countersignature; it sends a proof once it has.
func (w *Witness) consistency(cp *wardv1.Checkpoint, head evidence.Hash) (string, verdict) {
	size := cp.GetSize()
	if held, ok := w.byAt[size]; ok {
		if held != head {
			return fmt.Sprintf("history rewritten: checkpoint of size %d has head %s; this "+
				"clinic countersigned %s", size, head, held), fresh
		}
		return "", known
	}
	if w.last != nil && (size < w.last.Size ||
		cp.GetFromSize() == size && len(cp.GetLeafHashes()) == 0) {
		return "", unprovable
	}

	from := cp.GetFromSize()
	leaves := cp.GetLeafHashes()
	if from > size || from+uint64(len(leaves)) != size {
		return fmt.Sprintf("proof covers records %d..%d, not %d..%d", from+1,
			from+uint64(len(leaves)), from+1, size), fresh
	}
	if w.last != nil && from > w.last.Size {
		return fmt.Sprintf("proof starts after record %d, beyond this clinic's newest "+
			"checkpoint %d", from, w.last.Size), fresh
	}
	chain, err := hashOf(cp.GetFromHead())
	if err != nil {
		if from != 0 || len(cp.GetFromHead()) != 0 {
			return "malformed proof start", fresh
		}
	}
	if w.last == nil && from == size {
		return "", fresh // first checkpoint this witness sees: trusted as the start
	}
	if w.last != nil && from == w.last.Size && chain != w.byAt[from] {
		return fmt.Sprintf("history rewritten: the log's hash at record %d is %s; this "+
			"clinic countersigned %s", from, chain, w.byAt[from]), fresh
	}
	for i, l := range leaves {
		leaf, err := hashOf(l)
		if err != nil {
			return fmt.Sprintf("malformed leaf hash %d", from+uint64(i)+1), fresh
		}
		chain = evidence.ChainHash(chain, leaf)
		at := from + uint64(i) + 1
		if w.last != nil && at == w.last.Size && chain != w.byAt[at] {
			return fmt.Sprintf("history rewritten: the log's hash at record %d is %s; "+
				"this clinic countersigned %s", at, chain, w.byAt[at]), fresh
		}
	}
	if chain != head {
		return fmt.Sprintf("records %d..%d do not lead to head %s", from+1, size, head),
			fresh
	}
	return "", fresh
}

// sign countersigns c's text with the agent's current key.
func (w *Witness) sign(c evidence.Checkpoint, log *slog.Logger) *wardv1.WitnessSignature {
	pair, err := w.cfg.KeyPair()
	if err == nil && pair.PrivateKey == nil {
		err = errors.New("no private key")
	}
	if err != nil {
		log.Error("witness: load key pair", logkey.Error, err)
		return nil
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		log.Error("witness: the agent key cannot sign")
		return nil
	}
	sig, err := evidence.Sign(signer, c.Text())
	if err != nil {
		log.Error("witness: sign", logkey.Error, err)
		return nil
	}
	return &wardv1.WitnessSignature{Tenant: c.Tenant, Size: c.Size,
		HeadHash: append([]byte(nil), c.Head[:]...), Signature: sig,
		Certificates: pair.Certificate}
}

func hashOf(b []byte) (evidence.Hash, error) {
	var h evidence.Hash
	if len(b) != len(h) {
		return h, fmt.Errorf("hash of %d bytes", len(b))
	}
	copy(h[:], b)
	return h, nil
}
