// Package testca is a tiny certificate authority for tests, built on crypto/x509 only: it
// issues controller, agent and renewal certificates carrying Ward identities.
package testca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardsec/ward/pkg/identity"
)

// CA issues certificates. Safe for concurrent use.
type CA struct {
	Domain string
	Cert   *x509.Certificate
	Key    *ecdsa.PrivateKey
	serial atomic.Int64
}

// New returns a CA for the trust domain, valid for a day.
func New(tb testing.TB, domain string) *CA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test root " + domain},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &CA{Domain: domain, Cert: cert, Key: key}
	ca.serial.Store(1)
	return ca
}

// Pool returns a pool holding the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issue signs a certificate for pub naming id, valid from notBefore for ttl. Server
// certificates get localhost and 127.0.0.1 as names.
func (ca *CA) Issue(pub crypto.PublicKey, id identity.ID, notBefore time.Time,
	ttl time.Duration) ([]byte, error) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)),
		Subject:      pkix.Name{CommonName: id.Name},
		NotBefore:    notBefore,
		NotAfter:     notBefore.Add(ttl),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		URIs:         []*url.URL{id.URL()},
	}
	if id.Kind == identity.KindController {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	return der, nil
}

// SignCSR checks a DER CSR and issues a certificate for its key naming id, valid now for ttl.
func (ca *CA) SignCSR(csrDER []byte, id identity.ID, ttl time.Duration) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("parse csr: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("csr signature: %w", err)
	}
	return ca.Issue(csr.PublicKey, id, time.Now().Add(-time.Minute), ttl+time.Minute)
}

// KeyPair issues a certificate for a fresh key naming id, valid from now minus a minute
// for ttl plus a minute.
func (ca *CA) KeyPair(tb testing.TB, id identity.ID, ttl time.Duration) tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := ca.Issue(&key.PublicKey, id, time.Now().Add(-time.Minute), ttl+time.Minute)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}
