package evidence

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Checkpoint commits to the first Size records of a tenant's log: Head is the chain hash
// of record Size (32 zero bytes when Size is 0).
type Checkpoint struct {
	Tenant string
	Size   uint64
	Head   Hash
	Time   time.Time
}

// checkpointHeader is the first line of a checkpoint's signed text.
const checkpointHeader = "ward-evidence-checkpoint/v1"

// Text returns the bytes that the controller and the witnesses sign: five lines, each
// ending in "\n":
//
//	ward-evidence-checkpoint/v1
//	tenant <tenant id>
//	size <decimal>
//	head <64 lowercase hex digits>
//	time <RFC 3339, UTC, nanoseconds with trailing zeros dropped>
func (c Checkpoint) Text() []byte {
	var b strings.Builder
	b.WriteString(checkpointHeader + "\n")
	b.WriteString("tenant " + c.Tenant + "\n")
	b.WriteString("size " + strconv.FormatUint(c.Size, 10) + "\n")
	b.WriteString("head " + c.Head.String() + "\n")
	b.WriteString("time " + c.Time.UTC().Format(time.RFC3339Nano) + "\n")
	return []byte(b.String())
}

// ParseCheckpointText is the inverse of Text; it rejects anything Text would not write.
func ParseCheckpointText(text []byte) (Checkpoint, error) {
	lines := strings.Split(string(text), "\n")
	if len(lines) != 6 || lines[5] != "" || lines[0] != checkpointHeader {
		return Checkpoint{}, errors.New("evidence: checkpoint text: bad layout")
	}
	field := func(i int, name string) (string, error) {
		v, ok := strings.CutPrefix(lines[i], name+" ")
		if !ok {
			return "", fmt.Errorf("evidence: checkpoint text: line %d is not %q", i+1, name)
		}
		return v, nil
	}
	var c Checkpoint
	var err error
	if c.Tenant, err = field(1, "tenant"); err != nil {
		return c, err
	}
	size, err := field(2, "size")
	if err != nil {
		return c, err
	}
	if c.Size, err = strconv.ParseUint(size, 10, 64); err != nil {
		return c, fmt.Errorf("evidence: checkpoint size: %w", err)
	}
	head, err := field(3, "head")
	if err != nil {
		return c, err
	}
	if c.Head, err = ParseHash(head); err != nil {
		return c, err
	}
	ts, err := field(4, "time")
	if err != nil {
		return c, err
	}
	if c.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
		return c, fmt.Errorf("evidence: checkpoint time: %w", err)
	}
	if string(c.Text()) != string(text) {
		return c, errors.New("evidence: checkpoint text is not canonical")
	}
	return c, nil
}

// Sign signs SHA-256 of msg with key (ECDSA gives an ASN.1 DER signature, which is what
// `openssl dgst -sha256 -verify` checks).
func Sign(key crypto.Signer, msg []byte) ([]byte, error) {
	digest := sha256.Sum256(msg)
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("evidence: sign: %w", err)
	}
	return sig, nil
}

// ErrBadSignature is returned by VerifySignature for a signature that does not verify.
var ErrBadSignature = errors.New("evidence: bad signature")

// VerifySignature checks an ECDSA ASN.1 signature over SHA-256 of msg. Only ECDSA public
// keys are accepted.
func VerifySignature(pub crypto.PublicKey, msg, sig []byte) error {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("evidence: public key type %T: want ECDSA", pub)
	}
	digest := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(k, digest[:], sig) {
		return ErrBadSignature
	}
	return nil
}

// SignedCheckpoint is a checkpoint with the controller's signature over its Text.
type SignedCheckpoint struct {
	Checkpoint
	Signature []byte // ECDSA P-256, ASN.1 DER, over SHA-256 of Text
}

// Witness is a witness's countersignature of a checkpoint.
type Witness struct {
	Tenant    string
	Size      uint64    // the checkpoint's size
	Head      Hash      // the checkpoint's head
	WitnessID string    // agent id of the collector that signed
	Time      time.Time // when the controller received it
	Signature []byte    // by the agent key, over SHA-256 of the checkpoint's Text
	CertDER   [][]byte  // the witness's certificate chain, leaf first, as signed
}
