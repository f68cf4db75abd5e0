package pki

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestKeyRoundTripAndPrivateMode(t *testing.T) {
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	pemKey, err := EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sub", "key.pem")
	if err := WriteFile(path, pemKey, PrivateMode); err != nil {
		t.Fatal(err)
	}

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", info.Mode().Perm())
	}
	dir, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if dir.Mode().Perm() != 0o700 {
		t.Errorf("created directory mode %v, want 0700", dir.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseKey(data)
	if err != nil {
		t.Fatal(err)
	}
	if !back.(*ecdsa.PrivateKey).Equal(key) {
		t.Error("parsed key differs from the written one")
	}
}

func TestCSRNamesTheKey(t *testing.T) {
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	der, err := NewCSR(key, "hint")
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Errorf("csr signature: %v", err)
	}
	if !csr.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Error("csr carries another public key")
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	if _, err := ParseKey([]byte("not pem")); err == nil {
		t.Error("ParseKey accepted garbage")
	}
	if _, err := ParseCerts([]byte("-----BEGIN NOTHING-----\n-----END NOTHING-----\n")); err == nil {
		t.Error("ParseCerts accepted a file without certificates")
	}
	if _, err := ParsePublicKey(nil); err == nil {
		t.Error("ParsePublicKey accepted nothing")
	}
}

func TestClientConfigIsTLS13AndReadsCertEachTime(t *testing.T) {
	calls := 0
	cfg := ClientConfig(x509.NewCertPool(), "localhost", func() (*tls.Certificate, error) {
		calls++
		return &tls.Certificate{}, nil
	})
	if cfg.MinVersion != tls.VersionTLS13 {
		t.Errorf("MinVersion = %x, want TLS 1.3", cfg.MinVersion)
	}
	for range 2 {
		if _, err := cfg.GetClientCertificate(nil); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 2 {
		t.Errorf("certificate read %d times for two handshakes, want 2", calls)
	}
	if ClientConfig(nil, "x", nil).GetClientCertificate != nil {
		t.Error("a nil getCert still presents a certificate")
	}
}
