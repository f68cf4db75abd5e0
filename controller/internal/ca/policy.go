package ca

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.step.sm/crypto/keyutil"
	"go.step.sm/crypto/pemutil"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"

	"github.com/wardsec/ward/pkg/pki"
	"github.com/wardsec/ward/pkg/policysig"
)

// Policy key files under the data directory.
const (
	policyDir       = "policy"
	policyKeyFile   = "key.pem"    // PKCS#8, mode 0600
	policyPublicPEM = "public.pem" // PKIX
)

// PolicyKey signs baselines, runbooks and commands for agents, which pin its public key
// at enrollment and verify with pkg/policysig. It is safe for concurrent use.
type PolicyKey struct {
	key   *ecdsa.PrivateKey
	der   []byte // PKIX DER of the public key
	keyID string
}

// CreatePolicyKey generates a new ECDSA P-256 policy key and writes it to
// DIR/policy/key.pem (0600) and DIR/policy/public.pem. It refuses when a key exists.
func CreatePolicyKey(dir string) error {
	keyPath := filepath.Join(dir, policyDir, policyKeyFile)
	if _, err := os.Stat(keyPath); err == nil {
		return fmt.Errorf("ca: create policy key: %s already exists", keyPath)
	}

	signer, err := newSigner()
	if err != nil {
		return fmt.Errorf("ca: create policy key: %w", err)
	}
	keyPEM, err := encodeKey(signer)
	if err != nil {
		return fmt.Errorf("ca: create policy key: %w", err)
	}
	pubPEM, err := pki.EncodePublicKey(signer.Public())
	if err != nil {
		return fmt.Errorf("ca: create policy key: %w", err)
	}

	if err := pki.WriteFile(keyPath, keyPEM, pki.PrivateMode); err != nil {
		return fmt.Errorf("ca: create policy key: %w", err)
	}
	pubPath := filepath.Join(dir, policyDir, policyPublicPEM)
	if err := pki.WriteFile(pubPath, pubPEM, pki.PublicMode); err != nil {
		return fmt.Errorf("ca: create policy key: %w", err)
	}
	return nil
}

// LoadPolicyKey reads the policy key CreatePolicyKey wrote under dir and checks it against
// public.pem.
func LoadPolicyKey(dir string) (*PolicyKey, error) {
	k, err := pemutil.Read(filepath.Join(dir, policyDir, policyKeyFile))
	if err != nil {
		return nil, fmt.Errorf("ca: load policy key: %w", err)
	}
	priv, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("ca: load policy key: not an ECDSA private key")
	}
	pub, err := pemutil.Read(filepath.Join(dir, policyDir, policyPublicPEM))
	if err != nil {
		return nil, fmt.Errorf("ca: load policy public key: %w", err)
	}
	if err := keyutil.VerifyPair(pub, priv); err != nil {
		return nil, fmt.Errorf("ca: load policy key: public.pem does not match: %w", err)
	}
	return newPolicyKey(priv)
}

func newPolicyKey(priv *ecdsa.PrivateKey) (*PolicyKey, error) {
	if err := checkKey(&priv.PublicKey); err != nil {
		return nil, fmt.Errorf("ca: policy key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("ca: policy key: %w", err)
	}
	id, err := policysig.KeyID(&priv.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("ca: policy key: %w", err)
	}
	return &PolicyKey{key: priv, der: der, keyID: id}, nil
}

// PublicDER returns the PKIX DER public key, which agents pin at enrollment. The caller
// must not modify it.
func (k *PolicyKey) PublicDER() []byte { return k.der }

// KeyID returns the key's id (hex SHA-256 of PublicDER).
func (k *PolicyKey) KeyID() string { return k.keyID }

// Public returns the public key.
func (k *PolicyKey) Public() *ecdsa.PublicKey { return &k.key.PublicKey }

// Sign signs payload as a message of payloadType (its fully qualified protobuf name) and
// returns the SignedPayload that carries it.
func (k *PolicyKey) Sign(payloadType string, payload []byte) (*wardv1.SignedPayload, error) {
	if payloadType == "" {
		return nil, errors.New("ca: policy sign: empty payload type")
	}
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, policysig.Digest(payloadType, payload))
	if err != nil {
		return nil, fmt.Errorf("ca: policy sign: %w", err)
	}
	return &wardv1.SignedPayload{
		Payload:     payload,
		Signature:   sig,
		PayloadType: payloadType,
		KeyId:       k.keyID,
	}, nil
}
