package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/pki"
)

const domain = "msp.example"

func newCA(t *testing.T) (*CA, string) {
	t.Helper()
	dir := t.TempDir()
	c, err := Create(dir, domain)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return c, dir
}

// csrFor returns a CSR for a fresh key that asks for names the CA must ignore.
func csrFor(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	evil, _ := url.Parse("spiffe://" + domain + "/operator/admin")
	tmpl := &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "admin"},
		DNSNames: []string{"evil.example"},
		URIs:     []*url.URL{evil},
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func verifyClient(t *testing.T, c *CA, chain [][]byte, usage x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, der := range chain[1:] {
		ic, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(ic)
	}
	_, err = leaf.Verify(x509.VerifyOptions{
		Roots: c.Roots(), Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage},
	})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return leaf
}

func TestSignAgentSetsOnlyWhatTheCADecides(t *testing.T) {
	c, _ := newCA(t)
	key, _ := pki.NewKey()
	before := time.Now()

	chain, leaf, err := c.SignAgent(csrFor(t, key), "clinic-a", "agent-1", 24*time.Hour)
	if err != nil {
		t.Fatalf("SignAgent: %v", err)
	}

	if len(chain) != 2 || string(chain[1]) != string(c.Intermediate().Raw) {
		t.Fatalf("chain = %d certs, want [leaf, intermediate]", len(chain))
	}
	got := verifyClient(t, c, chain, x509.ExtKeyUsageClientAuth)
	if got.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Error("returned leaf is not chain[0]")
	}
	id, err := identity.FromCertificate(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if want := identity.Agent(domain, "clinic-a", "agent-1"); id != want {
		t.Errorf("id = %v, want %v", id, want)
	}
	if len(leaf.URIs) != 1 || len(leaf.DNSNames) != 0 || len(leaf.IPAddresses) != 0 {
		t.Errorf("SANs = %v %v %v, want the one URI", leaf.URIs, leaf.DNSNames, leaf.IPAddresses)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("key usage = %v", leaf.KeyUsage)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("ext key usage = %v, want clientAuth", leaf.ExtKeyUsage)
	}
	if leaf.IsCA {
		t.Error("leaf is a CA")
	}
	if nb := leaf.NotBefore; nb.After(before.Add(-Backdate+time.Second)) ||
		nb.Before(before.Add(-Backdate-5*time.Second)) {
		t.Errorf("NotBefore = %v, want about one minute before %v", nb, before)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < 24*time.Hour ||
		life > 24*time.Hour+Backdate+5*time.Second {
		t.Errorf("lifetime = %v", life)
	}
	if leaf.SerialNumber.BitLen() < 100 || leaf.SerialNumber.BitLen() > 128 {
		t.Errorf("serial has %d bits, want a random 128-bit number", leaf.SerialNumber.BitLen())
	}
	if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Error("leaf does not certify the CSR's key")
	}
}

func TestSignOperatorAndController(t *testing.T) {
	c, _ := newCA(t)
	key, _ := pki.NewKey()

	chain, leaf, err := c.SignOperator(csrFor(t, key), "alice", 90*24*time.Hour)
	if err != nil {
		t.Fatalf("SignOperator: %v", err)
	}
	verifyClient(t, c, chain, x509.ExtKeyUsageClientAuth)
	if id, _ := identity.FromCertificate(leaf); id != identity.Operator(domain, "alice") {
		t.Errorf("operator id = %v", id)
	}

	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	chain, err = c.SignController(key.Public(), "ctl", []string{"localhost", "ward.example"},
		ips, time.Hour)
	if err != nil {
		t.Fatalf("SignController: %v", err)
	}
	srv := verifyClient(t, c, chain, x509.ExtKeyUsageServerAuth)
	verifyClient(t, c, chain, x509.ExtKeyUsageClientAuth)
	for _, host := range []string{"localhost", "ward.example", "127.0.0.1", "::1"} {
		if err := srv.VerifyHostname(host); err != nil {
			t.Errorf("controller cert not valid for %s: %v", host, err)
		}
	}
	if id, _ := identity.FromCertificate(srv); id != identity.Controller(domain, "ctl") {
		t.Errorf("controller id = %v", id)
	}
}

func TestSignRefusesBadRequests(t *testing.T) {
	c, _ := newCA(t)
	good, _ := pki.NewKey()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	tampered := csrFor(t, good)
	tampered[len(tampered)-5] ^= 0xff // inside the signature

	tests := []struct {
		name   string
		csr    []byte
		tenant string
		want   error
		says   string
	}{
		{"garbage", []byte("not a csr at all"), "clinic-a", ErrBadCSR, "PKCS#10"},
		{"empty", nil, "clinic-a", ErrBadCSR, "PKCS#10"},
		{"bad signature", tampered, "clinic-a", ErrBadCSR, "signature"},
		{"p384 key", csrFor(t, p384), "clinic-a", ErrBadCSR, "P-256"},
		{"rsa key", csrFor(t, rsaKey), "clinic-a", ErrBadCSR, "P-256"},
		{"bad tenant", csrFor(t, good), "Clinic A", ErrBadName, "tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := c.SignAgent(tt.csr, tt.tenant, "agent-1", time.Hour)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("err = %q, want it to mention %q", err, tt.says)
			}
			if len(tt.csr) > 0 && strings.Contains(err.Error(), string(tt.csr)) {
				t.Error("error echoes the request")
			}
		})
	}
}

func TestLoadRoundTripAndFileModes(t *testing.T) {
	c, dir := newCA(t)

	for _, f := range []string{"ca/root-key.pem", "ca/intermediate-key.pem"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", f, st.Mode().Perm())
		}
	}
	bundle, err := pki.LoadPool(filepath.Join(dir, BundleFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bundle.Equal(c.Roots()) {
		t.Error("ca.pem is not the root")
	}

	loaded, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if loaded.TrustDomain() != domain {
		t.Errorf("trust domain = %q", loaded.TrustDomain())
	}
	key, _ := pki.NewKey()
	chain, _, err := loaded.SignOperator(csrFor(t, key), "bob", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	verifyClient(t, c, chain, x509.ExtKeyUsageClientAuth) // verifies against the original

	if _, err := Create(dir, domain); !errors.Is(err, ErrExists) {
		t.Errorf("second Create err = %v, want ErrExists", err)
	}
}

func TestLoadRefusesMismatchedKey(t *testing.T) {
	_, dir := newCA(t)
	_, other := newCA(t)
	data, err := os.ReadFile(filepath.Join(other, "ca/intermediate-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca/intermediate-key.pem"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil {
		t.Fatal("Load accepted an intermediate key of another CA")
	}
}

// TestNameConstraintConfinesDomain checks that the intermediate cannot vouch for another
// trust domain: a leaf naming one fails verification.
func TestNameConstraintConfinesDomain(t *testing.T) {
	c, _ := newCA(t)
	key, _ := pki.NewKey()
	foreign := identity.Operator("other.example", "mallory")
	chain, _, err := c.sign(key.Public(), leaf{id: foreign, commonName: "m", ttl: time.Hour,
		usage: clientUsage})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(chain[0])
	inter := x509.NewCertPool()
	inter.AddCert(c.Intermediate())
	_, err = cert.Verify(x509.VerifyOptions{Roots: c.Roots(), Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err == nil {
		t.Fatal("a leaf of another trust domain verified")
	}
}

func TestCreateRefusesBadDomain(t *testing.T) {
	if _, err := Create(t.TempDir(), "Not A Domain"); err == nil {
		t.Fatal("Create accepted an invalid trust domain")
	}
}

// TestClientCAsVerifyALeafAlone accepts an agent's leaf presented without its chain, as
// agents present it, and still refuses a leaf of another installation.
func TestClientCAsVerifyALeafAlone(t *testing.T) {
	c, _ := newCA(t)
	other, _ := newCA(t)
	key, _ := pki.NewKey()
	_, leaf, err := c.SignAgentKey(key.Public(), "clinic-a", "agent-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, foreign, err := other.SignAgentKey(key.Public(), "clinic-a", "agent-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	verify := func(cert *x509.Certificate, roots *x509.CertPool) error {
		_, err := cert.Verify(x509.VerifyOptions{Roots: roots,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		return err
	}
	if err := verify(leaf, c.ClientCAs()); err != nil {
		t.Errorf("leaf alone against ClientCAs: %v", err)
	}
	if err := verify(leaf, c.Roots()); err == nil {
		t.Error("leaf alone verified against the root only: ClientCAs would be pointless")
	}
	if err := verify(foreign, c.ClientCAs()); err == nil {
		t.Error("a leaf of another installation verified against ClientCAs")
	}
}
