package evidence

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/pkg/evidence"
	"github.com/wardsec/ward/pkg/pki"
)

// Files of the evidence key under the data directory.
const (
	KeyDir       = "evidence"
	keyFile      = "key.pem"  // PKCS#8, mode 0600
	certFile     = "cert.pem" // the key's certificate, then the intermediate CA
	KeyName      = "evidence" // controller name in the certificate's identity
	KeyCertTTL   = 5 * 365 * 24 * time.Hour
	renewKeyCert = 90 * 24 * time.Hour // reissue the certificate when less is left
)

// Key is the controller's evidence signing key with its certificate chain.
type Key struct {
	Signer      crypto.Signer
	PublicPEM   []byte // PEM "PUBLIC KEY"
	ChainPEM    []byte // the key's certificate, then the issuing CA certificates
	Fingerprint string // SHA-256 of the DER SubjectPublicKeyInfo, hex
}

// LoadOrCreateKey loads dataDir/evidence/key.pem, creating the key (P-256, 0600) when it
// is missing, which is how installations made before the evidence log get theirs on
// their first serve. Its certificate (spiffe://<domain>/controller/evidence, issued by
// authority) is (re)issued when missing, for another key, or within 90 days of expiry.
func LoadOrCreateKey(dataDir string, authority *ca.CA) (*Key, error) {
	dir := filepath.Join(dataDir, KeyDir)
	keyPath, certPath := filepath.Join(dir, keyFile), filepath.Join(dir, certFile)

	signer, err := loadOrCreateSigner(keyPath)
	if err != nil {
		return nil, err
	}
	pubPEM, err := pki.EncodePublicKey(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("evidence key: %w", err)
	}
	fp, err := evidence.Fingerprint(signer.Public())
	if err != nil {
		return nil, err
	}

	chainPEM, err := os.ReadFile(certPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("evidence key: %w", err)
	}
	if !certUsable(chainPEM, fp) {
		chain, err := authority.SignController(signer.Public(), KeyName, nil, nil, KeyCertTTL)
		if err != nil {
			return nil, fmt.Errorf("evidence key certificate: %w", err)
		}
		chainPEM = pki.EncodeCerts(chain...)
		if err := pki.WriteFile(certPath, chainPEM, 0o644); err != nil {
			return nil, fmt.Errorf("evidence key certificate: %w", err)
		}
	}
	return &Key{Signer: signer, PublicPEM: pubPEM, ChainPEM: chainPEM, Fingerprint: fp}, nil
}

func loadOrCreateSigner(keyPath string) (crypto.Signer, error) {
	data, err := os.ReadFile(keyPath)
	if err == nil {
		k, err := pki.ParseKey(data)
		if err != nil {
			return nil, fmt.Errorf("evidence key %s: %w", keyPath, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("evidence key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
		return nil, fmt.Errorf("evidence key: %w", err)
	}
	k, err := pki.NewKey()
	if err != nil {
		return nil, fmt.Errorf("evidence key: %w", err)
	}
	pemBytes, err := pki.EncodeKey(k)
	if err != nil {
		return nil, fmt.Errorf("evidence key: %w", err)
	}
	if err := pki.WriteFile(keyPath, pemBytes, pki.PrivateMode); err != nil {
		return nil, fmt.Errorf("evidence key: %w", err)
	}
	return k, nil
}

// certUsable reports whether chainPEM's first certificate is for the key with fingerprint
// fp and has more than renewKeyCert left.
func certUsable(chainPEM []byte, fp string) bool {
	certs, err := pki.ParseCerts(chainPEM)
	if err != nil || len(certs) == 0 {
		return false
	}
	got, err := evidence.Fingerprint(certs[0].PublicKey)
	if err != nil || got != fp {
		return false
	}
	return time.Until(certs[0].NotAfter) > renewKeyCert
}

// keyCert returns the key's certificate (for tests).
func (k *Key) keyCert() (*x509.Certificate, error) {
	certs, err := pki.ParseCerts(k.ChainPEM)
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("evidence key certificate: %v", err)
	}
	return certs[0], nil
}

// ScrubSalt returns a secret salt for the PHI scrubber derived from the evidence key, so
// that scrubbed markers stay the same across restarts without another secret to keep.
func (k *Key) ScrubSalt() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Signer)
	if err != nil {
		return nil, fmt.Errorf("evidence key: scrub salt: %w", err)
	}
	sum := sha256.Sum256(append([]byte("ward-scrub-salt/v1\x00"), der...))
	return sum[:], nil
}
