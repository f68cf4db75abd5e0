package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/wardsec/ward/pkg/identity"
)

// creds holds the certificate the agent presents and the roots it trusts, both swappable
// while connections are open: a renewed certificate or a new trust bundle takes effect at
// the next handshake. Safe for concurrent use.
type creds struct {
	cert  atomic.Pointer[held]
	roots atomic.Pointer[x509.CertPool]
}

// held is a certificate with the time the agent obtained it. CAs backdate NotBefore to
// absorb clock skew, so the lifetime that renewal divides runs from the later of the two.
type held struct {
	cert      *tls.Certificate // Leaf always set
	presented *tls.Certificate // cert with its leaf alone (see leafOnly)
	obtained  time.Time
}

// leafOnly returns c presenting its leaf certificate alone. The controller trusts the
// intermediate that signs every agent certificate, so the rest of the chain would only
// make each handshake longer and each connection's state larger on the controller.
func leafOnly(c *tls.Certificate) *tls.Certificate {
	if len(c.Certificate) <= 1 {
		return c
	}
	p := *c
	p.Certificate = c.Certificate[:1]
	return &p
}

func newCreds(cert tls.Certificate, obtained time.Time, roots *x509.CertPool) (*creds, error) {
	if cert.Leaf == nil {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("parse agent certificate: %w", err)
		}
		cert.Leaf = leaf
	}
	c := &creds{}
	c.swap(&cert, obtained) // renewAt uses NotBefore when obtained is earlier or zero
	c.roots.Store(roots)
	return c, nil
}

// swap makes cert the one presented from the next handshake on.
func (c *creds) swap(cert *tls.Certificate, obtained time.Time) {
	c.cert.Store(&held{cert: cert, presented: leafOnly(cert), obtained: obtained})
}

func (c *creds) leaf() *x509.Certificate { return c.cert.Load().cert.Leaf }

// obtained returns when the current certificate was obtained (its NotBefore for the one
// loaded at start).
func (c *creds) obtained() time.Time { return c.cert.Load().obtained }

func (c *creds) clientCert() (*tls.Certificate, error) { return c.cert.Load().presented, nil }

// tlsConfig returns the client TLS 1.3 configuration: the certificate is read at each
// handshake, and the controller must present a certificate that chains to the current
// roots, matches serverName and names a controller of the trust domain.
func (c *creds) tlsConfig(serverName, trustDomain string) *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return c.clientCert()
		},
		// The chain is verified in VerifyConnection against the roots of the moment, so
		// that a trust bundle renewed with the certificate applies without a restart.
		InsecureSkipVerify: true,
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		return c.verifyController(cs, serverName, trustDomain)
	}
	return cfg
}

func (c *creds) verifyController(cs tls.ConnectionState, serverName, domain string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("controller presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, ic := range cs.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		DNSName:       serverName,
		Roots:         c.roots.Load(),
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("verify controller certificate: %w", err)
	}

	id, err := identity.FromCertificate(leaf)
	if err != nil {
		return fmt.Errorf("verify controller certificate: %w", err)
	}
	if id.Kind != identity.KindController || id.Domain != domain {
		return fmt.Errorf("verify controller certificate: %s is not a controller of %s",
			id, domain)
	}
	return nil
}

// expired reports whether the current certificate has expired at now.
func (c *creds) expired(now time.Time) bool { return !now.Before(c.leaf().NotAfter) }
