// Package policysig verifies what the controller signs with its policy key: baselines,
// runbooks and commands travel as ward.v1.SignedPayload, and the agent runs nothing whose
// signature, key or type does not check out. The signature is ASN.1 DER ECDSA P-256 over
//
//	SHA-256(payload_type || 0x00 || payload)
//
// so a payload signed as one type cannot be presented as another. The key id is the hex
// SHA-256 of the signing key's PKIX DER encoding. This package uses only the standard
// library: the agent links it.
package policysig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
)

// Errors callers branch on; test with errors.Is.
var (
	// ErrWrongType means the payload was signed (or claims to be) of another type than the
	// one the caller expects.
	ErrWrongType = errors.New("policysig: unexpected payload type")
	// ErrUnknownKey means the key id names a key other than the pinned one.
	ErrUnknownKey = errors.New("policysig: signed by an unknown key")
	// ErrBadSignature means the signature does not verify over the type and payload.
	ErrBadSignature = errors.New("policysig: bad signature")
)

// Signed mirrors the fields of ward.v1.SignedPayload, so that this package needs no
// generated code. The zero value verifies against nothing.
type Signed struct {
	PayloadType string // fully qualified protobuf name, e.g. "ward.v1.CommandSpec"
	Payload     []byte // the serialized inner message
	Signature   []byte // ASN.1 DER ECDSA signature over Digest(PayloadType, Payload)
	KeyID       string // KeyID of the signing key
}

// Digest returns SHA-256(payloadType || 0x00 || payload), the value the policy key signs.
func Digest(payloadType string, payload []byte) []byte {
	h := sha256.New()
	h.Write([]byte(payloadType))
	h.Write([]byte{0})
	h.Write(payload)
	return h.Sum(nil)
}

// KeyID returns the hex SHA-256 of pub's PKIX DER encoding.
func KeyID(pub *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("policysig: key id: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// ParsePublicKey parses a PKIX DER ECDSA P-256 public key, as the controller hands it to an
// agent at enrollment.
func ParsePublicKey(der []byte) (*ecdsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("policysig: parse public key: %w", err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("policysig: parse public key: not an ECDSA P-256 key")
	}
	return pub, nil
}

// Verify checks that s is of type wantType, names pub by its key id, and carries a valid
// signature by pub over its type and payload. Only then may the caller decode s.Payload.
func Verify(pub *ecdsa.PublicKey, wantType string, s Signed) error {
	if pub == nil {
		return errors.New("policysig: verify: no public key")
	}
	if s.PayloadType != wantType {
		return fmt.Errorf("%w: got %q, want %q", ErrWrongType, s.PayloadType, wantType)
	}
	id, err := KeyID(pub)
	if err != nil {
		return err
	}
	if s.KeyID != id {
		return ErrUnknownKey
	}
	if !ecdsa.VerifyASN1(pub, Digest(s.PayloadType, s.Payload), s.Signature) {
		return ErrBadSignature
	}
	return nil
}
