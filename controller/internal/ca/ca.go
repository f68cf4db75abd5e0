// Package ca is the controller's embedded certificate authority, built on smallstep's
// go.step.sm/crypto. It keeps a root (10 years) and an intermediate (5 years) under
// DIR/ca/ and the trust bundle (the root alone) in DIR/ca.pem. The intermediate signs every
// leaf: agents, operators and the controller itself. Each leaf carries exactly one
// spiffe:// URI SAN from pkg/identity, whatever the certificate signing request asked for.
//
// Files (private keys mode 0600, PKCS#8 PEM):
//
//	DIR/ca.pem                       root certificate (the trust bundle)
//	DIR/ca/root.pem, root-key.pem    root certificate and key
//	DIR/ca/intermediate.pem, intermediate-key.pem
//
// The root carries the trust domain as its URI SAN (spiffe://<domain>), and the
// intermediate is name-constrained to URIs of that domain, so a leaf naming another
// domain fails verification even if it were ever issued.
package ca

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.step.sm/crypto/keyutil"
	"go.step.sm/crypto/pemutil"
	"go.step.sm/crypto/x509util"

	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/pki"
)

// Lifetimes of the CA certificates, and how far every certificate is backdated to absorb
// clock skew between the controller and its peers.
const (
	RootTTL         = 10 * 365 * 24 * time.Hour
	IntermediateTTL = 5 * 365 * 24 * time.Hour
	Backdate        = time.Minute
)

// File names under the data directory.
const (
	BundleFile           = "ca.pem"
	dirName              = "ca"
	rootCertFile         = "root.pem"
	rootKeyFile          = "root-key.pem"
	intermediateCertFile = "intermediate.pem"
	intermediateKeyFile  = "intermediate-key.pem"
)

// ErrExists is returned by Create when the directory already holds a CA.
var ErrExists = errors.New("ca: a ca already exists")

// CA issues Ward certificates. It is safe for concurrent use: its fields never change
// after Create or Load.
type CA struct {
	trustDomain  string
	root         *x509.Certificate
	intermediate *x509.Certificate
	signer       crypto.Signer // the intermediate's key
	clock        func() time.Time
	agentShape   func() (*x509.Certificate, error) // newAgentShape; rendered once
}

// Create makes a new root and intermediate for trustDomain and writes them under dir
// (see the package doc). It refuses with ErrExists when dir/ca already exists, so an
// installation's CA is never overwritten.
func Create(dir, trustDomain string) (*CA, error) {
	if err := (identity.Controller(trustDomain, "x")).Validate(); err != nil {
		return nil, fmt.Errorf("ca: create: %w", err)
	}
	caDir := filepath.Join(dir, dirName)
	if _, err := os.Stat(caDir); err == nil {
		return nil, ErrExists
	}

	c := &CA{trustDomain: trustDomain, clock: time.Now, agentShape: newAgentShape(trustDomain)}
	rootKey, err := newSigner()
	if err != nil {
		return nil, fmt.Errorf("ca: create: %w", err)
	}
	c.root, err = c.issueRoot(rootKey)
	if err != nil {
		return nil, fmt.Errorf("ca: create root: %w", err)
	}
	c.signer, err = newSigner()
	if err != nil {
		return nil, fmt.Errorf("ca: create: %w", err)
	}
	c.intermediate, err = c.issueIntermediate(rootKey)
	if err != nil {
		return nil, fmt.Errorf("ca: create intermediate: %w", err)
	}

	if err := c.write(dir, rootKey); err != nil {
		return nil, fmt.Errorf("ca: create: %w", err)
	}
	return c, nil
}

// Load reads the CA that Create wrote under dir. It checks that each key matches its
// certificate and that the intermediate chains to the root.
func Load(dir string) (*CA, error) {
	caDir := filepath.Join(dir, dirName)
	root, err := pemutil.ReadCertificate(filepath.Join(caDir, rootCertFile))
	if err != nil {
		return nil, fmt.Errorf("ca: load root: %w", err)
	}
	inter, err := pemutil.ReadCertificate(filepath.Join(caDir, intermediateCertFile))
	if err != nil {
		return nil, fmt.Errorf("ca: load intermediate: %w", err)
	}
	signer, err := readSigner(filepath.Join(caDir, intermediateKeyFile))
	if err != nil {
		return nil, fmt.Errorf("ca: load intermediate key: %w", err)
	}
	if err := keyutil.VerifyPair(inter.PublicKey, signer); err != nil {
		return nil, fmt.Errorf("ca: load: intermediate key does not match its certificate: %w",
			err)
	}
	if err := inter.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("ca: load: intermediate not signed by root: %w", err)
	}

	domain, err := domainOf(root)
	if err != nil {
		return nil, fmt.Errorf("ca: load: %w", err)
	}
	return &CA{
		trustDomain:  domain,
		root:         root,
		intermediate: inter,
		signer:       signer,
		clock:        time.Now,
		agentShape:   newAgentShape(domain),
	}, nil
}

// TrustDomain returns the installation's trust domain.
func (c *CA) TrustDomain() string { return c.trustDomain }

// Roots returns a new pool holding the root, for verifying peers. The caller owns it.
func (c *CA) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(c.root)
	return pool
}

// ClientCAs returns a new pool for verifying client certificates: the root, and the
// intermediate that signs every leaf, so that a client may present its leaf alone (agents
// do: a chain of one halves what the controller parses, checks and keeps for each
// connection). A full chain verifies as before. The caller owns the pool.
func (c *CA) ClientCAs() *x509.CertPool {
	pool := c.Roots()
	pool.AddCert(c.intermediate)
	return pool
}

// RootsDER returns the trust bundle as DER certificates (today: the root alone).
func (c *CA) RootsDER() [][]byte { return [][]byte{c.root.Raw} }

// BundlePEM returns the trust bundle as PEM, as written to DIR/ca.pem.
func (c *CA) BundlePEM() []byte { return pki.EncodeCerts(c.root.Raw) }

// Intermediate returns the certificate that signs leaves. The caller must not modify it.
func (c *CA) Intermediate() *x509.Certificate { return c.intermediate }

func (c *CA) issueRoot(key crypto.Signer) (*x509.Certificate, error) {
	data := x509util.TemplateData{}
	data.SetSubject(x509util.Subject{
		CommonName:   "Ward Root CA",
		Organization: []string{c.trustDomain},
	})
	data.Set("URI", trustDomainURL(c.trustDomain).String())
	tmpl, err := template(rootTemplate, data, key.Public())
	if err != nil {
		return nil, err
	}
	c.setValidity(tmpl, RootTTL, time.Time{})
	return x509util.CreateCertificate(tmpl, tmpl, key.Public(), key)
}

func (c *CA) issueIntermediate(rootKey crypto.Signer) (*x509.Certificate, error) {
	data := x509util.TemplateData{}
	data.SetSubject(x509util.Subject{
		CommonName:   "Ward Intermediate CA",
		Organization: []string{c.trustDomain},
	})
	data.Set("Domain", c.trustDomain)
	tmpl, err := template(intermediateTemplate, data, c.signer.Public())
	if err != nil {
		return nil, err
	}
	c.setValidity(tmpl, IntermediateTTL, c.root.NotAfter)
	return x509util.CreateCertificate(tmpl, c.root, c.signer.Public(), rootKey)
}

// setValidity backdates tmpl and sets its expiry ttl from now, capped at limit when limit
// is not zero (a certificate never outlives its issuer).
func (c *CA) setValidity(tmpl *x509.Certificate, ttl time.Duration, limit time.Time) {
	now := c.clock()
	tmpl.NotBefore = now.Add(-Backdate)
	tmpl.NotAfter = now.Add(ttl)
	if !limit.IsZero() && tmpl.NotAfter.After(limit) {
		tmpl.NotAfter = limit
	}
}

func (c *CA) write(dir string, rootKey crypto.Signer) error {
	caDir := filepath.Join(dir, dirName)
	rootKeyPEM, err := encodeKey(rootKey)
	if err != nil {
		return err
	}
	interKeyPEM, err := encodeKey(c.signer)
	if err != nil {
		return err
	}
	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{filepath.Join(caDir, rootKeyFile), rootKeyPEM, pki.PrivateMode},
		{filepath.Join(caDir, intermediateKeyFile), interKeyPEM, pki.PrivateMode},
		{filepath.Join(caDir, rootCertFile), pki.EncodeCerts(c.root.Raw), pki.PublicMode},
		{filepath.Join(caDir, intermediateCertFile), pki.EncodeCerts(c.intermediate.Raw),
			pki.PublicMode},
		{filepath.Join(dir, BundleFile), c.BundlePEM(), pki.PublicMode},
	}
	for _, f := range files {
		if err := pki.WriteFile(f.path, f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// trustDomainURL is the URI SAN of the root: spiffe://<domain>.
func trustDomainURL(domain string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: domain}
}

// domainOf reads the trust domain back from the root's URI SAN.
func domainOf(root *x509.Certificate) (string, error) {
	if len(root.URIs) != 1 || root.URIs[0].Scheme != "spiffe" || root.URIs[0].Host == "" {
		return "", errors.New("root certificate names no trust domain")
	}
	return root.URIs[0].Host, nil
}

func newSigner() (crypto.Signer, error) {
	k, err := keyutil.GenerateSigner("EC", "P-256", 0)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return k, nil
}

func encodeKey(k crypto.Signer) ([]byte, error) {
	block, err := pemutil.Serialize(k, pemutil.WithPKCS8(true))
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pemEncode(block), nil
}

func readSigner(path string) (crypto.Signer, error) {
	k, err := pemutil.Read(path)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a private key", path)
	}
	return s, nil
}
