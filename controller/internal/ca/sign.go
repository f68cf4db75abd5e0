package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"go.step.sm/crypto/x509util"

	"github.com/wardsec/ward/pkg/identity"
)

// ErrBadCSR is wrapped by every error about a certificate signing request the CA refuses
// (malformed, bad signature, wrong key type). The message says what was wrong and never
// repeats the request. Callers answer InvalidArgument.
var ErrBadCSR = errors.New("ca: bad certificate signing request")

// ErrBadName is wrapped when a tenant, agent, operator or controller name is not a valid
// identity element (see identity.ValidName).
var ErrBadName = errors.New("ca: invalid name")

// Templates for x509util. Leaves name only what the CA decides: the subject and SANs come
// from the template data, never from the request.
const (
	rootTemplate = `{
	"subject": {{ toJson .Subject }},
	"issuer": {{ toJson .Subject }},
	"uris": [{{ toJson .URI }}],
	"keyUsage": ["certSign", "crlSign"],
	"basicConstraints": {"isCA": true, "maxPathLen": 1}
}`
	intermediateTemplate = `{
	"subject": {{ toJson .Subject }},
	"keyUsage": ["certSign", "crlSign"],
	"basicConstraints": {"isCA": true, "maxPathLen": 0},
	"nameConstraints": {"critical": true, "permittedURIDomains": [{{ toJson .Domain }}]}
}`
	leafTemplate = `{
	"subject": {{ toJson .Subject }},
	"sans": {{ toJson .SANs }},
	"keyUsage": ["digitalSignature"],
	"extKeyUsage": {{ toJson .ExtKeyUsage }}
}`
)

var (
	clientUsage = []string{x509util.ExtKeyUsageClientAuth}
	serverUsage = []string{x509util.ExtKeyUsageServerAuth, x509util.ExtKeyUsageClientAuth}
)

// SignAgent issues a client certificate for the key in csrDER naming
// spiffe://<domain>/tenant/<tenant>/agent/<agentID>, valid for ttl (capped at the
// intermediate's expiry). It returns the chain as DER, leaf first, and the parsed leaf.
func (c *CA) SignAgent(csrDER []byte, tenant, agentID string, ttl time.Duration) (
	[][]byte, *x509.Certificate, error) {
	id := identity.Agent(c.trustDomain, tenant, agentID)
	if err := id.Validate(); err != nil {
		return nil, nil, fmt.Errorf("ca: sign agent: %w: %w", ErrBadName, err)
	}
	return c.signCSR(csrDER, leaf{id: id, commonName: agentID, org: tenant, ttl: ttl,
		usage: clientUsage, agent: true})
}

// SignAgentKey is SignAgent for a key the caller took from a request it has checked
// itself (an ECDSA P-256 public key), so that the request is not parsed and verified
// twice.
func (c *CA) SignAgentKey(pub crypto.PublicKey, tenant, agentID string, ttl time.Duration) (
	[][]byte, *x509.Certificate, error) {
	id := identity.Agent(c.trustDomain, tenant, agentID)
	if err := id.Validate(); err != nil {
		return nil, nil, fmt.Errorf("ca: sign agent: %w: %w", ErrBadName, err)
	}
	if err := checkKey(pub); err != nil {
		return nil, nil, fmt.Errorf("ca: sign agent: %w", err)
	}
	return c.sign(pub, leaf{id: id, commonName: agentID, org: tenant, ttl: ttl,
		usage: clientUsage, agent: true})
}

// SignOperator issues a client certificate for the key in csrDER naming
// spiffe://<domain>/operator/<name>, valid for ttl. It returns the chain as DER, leaf
// first, and the parsed leaf.
func (c *CA) SignOperator(csrDER []byte, name string, ttl time.Duration) (
	[][]byte, *x509.Certificate, error) {
	id := identity.Operator(c.trustDomain, name)
	if err := id.Validate(); err != nil {
		return nil, nil, fmt.Errorf("ca: sign operator: %w: %w", ErrBadName, err)
	}
	return c.signCSR(csrDER, leaf{id: id, commonName: name, ttl: ttl, usage: clientUsage})
}

// SignController issues the controller's serving certificate for pub (an ECDSA P-256
// public key): spiffe://<domain>/controller/<name> plus the given DNS names and IPs,
// usable for server and client authentication. It returns the chain as DER, leaf first.
func (c *CA) SignController(pub crypto.PublicKey, name string, dns []string, ips []net.IP,
	ttl time.Duration) ([][]byte, error) {
	id := identity.Controller(c.trustDomain, name)
	if err := id.Validate(); err != nil {
		return nil, fmt.Errorf("ca: sign controller: %w: %w", ErrBadName, err)
	}
	if err := checkKey(pub); err != nil {
		return nil, fmt.Errorf("ca: sign controller: %w", err)
	}
	chain, _, err := c.sign(pub, leaf{id: id, commonName: name, dns: dns, ips: ips, ttl: ttl,
		usage: serverUsage})
	if err != nil {
		return nil, fmt.Errorf("ca: sign controller: %w", err)
	}
	return chain, nil
}

// leaf is what the CA puts in a leaf certificate.
type leaf struct {
	id         identity.ID
	commonName string
	org        string // subject organisation; the tenant for agents
	dns        []string
	ips        []net.IP
	ttl        time.Duration
	usage      []string // x509util ext key usage names
	agent      bool     // an agent's: made from the CA's agent shape (see leafTemplate)
}

// signCSR checks the request and signs its public key; nothing else of it is used.
func (c *CA) signCSR(csrDER []byte, l leaf) ([][]byte, *x509.Certificate, error) {
	pub, err := CheckCSR(csrDER)
	if err != nil {
		return nil, nil, err
	}
	return c.sign(pub, l)
}

// CheckCSR parses a DER PKCS#10 request, checks its signature and that its key is ECDSA
// P-256, and returns the key. Errors wrap ErrBadCSR. The Sign methods call it; callers
// that must validate a request before acting on it (say, before storing an operator) may
// call it first.
func CheckCSR(csrDER []byte) (crypto.PublicKey, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("%w: not a DER-encoded PKCS#10 request", ErrBadCSR)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature does not verify", ErrBadCSR)
	}
	if err := checkKey(csr.PublicKey); err != nil {
		return nil, err
	}
	return csr.PublicKey, nil
}

// checkKey accepts ECDSA P-256 public keys only.
func checkKey(pub crypto.PublicKey) error {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: key is %T, want ECDSA P-256", ErrBadCSR, pub)
	}
	if k.Curve != elliptic.P256() {
		return fmt.Errorf("%w: key is ECDSA %s, want P-256", ErrBadCSR, k.Curve.Params().Name)
	}
	return nil
}

func (c *CA) sign(pub crypto.PublicKey, l leaf) ([][]byte, *x509.Certificate, error) {
	if l.ttl <= 0 {
		return nil, nil, fmt.Errorf("ca: certificate lifetime %v is not positive", l.ttl)
	}

	tmpl, err := c.leafTemplate(pub, l)
	if err != nil {
		return nil, nil, err
	}
	c.setValidity(tmpl, l.ttl, c.intermediate.NotAfter)
	cert, err := x509util.CreateCertificate(tmpl, c.intermediate, pub, c.signer)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: sign %s: %w", l.id, err)
	}
	return [][]byte{cert.Raw, c.intermediate.Raw}, cert, nil
}

// leafTemplate returns the unsigned leaf for pub and l. Agent leaves, one per enrollment,
// are copies of the CA's agent shape with their subject, URI and key set: the same
// certificate the template gives them, without rendering it each time.
func (c *CA) leafTemplate(pub crypto.PublicKey, l leaf) (*x509.Certificate, error) {
	if !l.agent {
		return renderLeaf(pub, l)
	}
	shape, err := c.agentShape()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(l.id.String())
	if err != nil {
		return nil, fmt.Errorf("ca: agent uri: %w", err)
	}
	tmpl := *shape
	tmpl.Subject = pkix.Name{CommonName: l.commonName, Organization: []string{l.org}}
	tmpl.URIs = []*url.URL{u}
	tmpl.PublicKey = pub
	return &tmpl, nil
}

// newAgentShape renders the leaf template once for an agent of trustDomain, the shape
// every agent leaf is copied from. Its key is a placeholder.
func newAgentShape(trustDomain string) func() (*x509.Certificate, error) {
	return sync.OnceValues(func() (*x509.Certificate, error) {
		key, err := newSigner()
		if err != nil {
			return nil, err
		}
		return renderLeaf(key.Public(), leaf{id: identity.Agent(trustDomain, "t", "a"),
			commonName: "a", org: "t", usage: clientUsage})
	})
}

// renderLeaf renders the leaf template for pub and l.
func renderLeaf(pub crypto.PublicKey, l leaf) (*x509.Certificate, error) {
	sans := []x509util.SubjectAlternativeName{{Type: x509util.URIType, Value: l.id.String()}}
	for _, d := range l.dns {
		sans = append(sans, x509util.SubjectAlternativeName{Type: x509util.DNSType, Value: d})
	}
	for _, ip := range l.ips {
		sans = append(sans, x509util.SubjectAlternativeName{Type: x509util.IPType,
			Value: ip.String()})
	}
	data := x509util.TemplateData{}
	subject := x509util.Subject{CommonName: l.commonName}
	if l.org != "" {
		subject.Organization = []string{l.org}
	}
	data.SetSubject(subject)
	data.SetSubjectAlternativeNames(sans...)
	data.Set("ExtKeyUsage", l.usage)
	return template(leafTemplate, data, pub)
}

// template renders an x509util template for pub into an unsigned certificate. The serial
// is left nil so that x509util.CreateCertificate picks a random 128-bit one.
func template(text string, data x509util.TemplateData, pub crypto.PublicKey) (
	*x509.Certificate, error) {
	base := &x509.Certificate{PublicKey: pub, PublicKeyAlgorithm: x509.ECDSA}
	cert, err := x509util.NewCertificateFromX509(base, x509util.WithTemplate(text, data))
	if err != nil {
		return nil, fmt.Errorf("render certificate template: %w", err)
	}
	return cert.GetCertificate(), nil
}

func pemEncode(b *pem.Block) []byte { return pem.EncodeToMemory(b) }
