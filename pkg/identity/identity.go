// Package identity names the parties of a Ward installation. Every certificate the Ward CA
// issues carries exactly one URI SAN of the form
//
//	spiffe://<trust-domain>/tenant/<tenant>/agent/<agent-id>
//	spiffe://<trust-domain>/operator/<name>
//	spiffe://<trust-domain>/controller/<name>
//
// Authorisation is decided from an ID parsed out of a verified certificate, never from
// anything a client sends in a message.
package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Kind says which sort of party an ID names.
type Kind int

// The kinds of parties.
const (
	KindUnknown Kind = iota
	KindAgent
	KindOperator
	KindController
)

// String returns the kind's path element ("agent", "operator", "controller").
func (k Kind) String() string {
	switch k {
	case KindAgent:
		return "agent"
	case KindOperator:
		return "operator"
	case KindController:
		return "controller"
	}
	return "unknown"
}

// ErrNoIdentity is returned when a certificate carries no usable Ward URI SAN.
var ErrNoIdentity = errors.New("identity: certificate carries no ward identity")

// namePattern is the shape of every path element: tenant ids, agent ids, operator and
// controller names. Lower-case so that two spellings cannot name the same party.
var namePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$`)

// ValidName reports whether s may be used as a tenant id, agent id or operator name.
func ValidName(s string) bool {
	return namePattern.MatchString(s) && !strings.Contains(s, "..")
}

// ID is a parsed Ward identity. The zero value is not a valid identity.
type ID struct {
	Domain string // trust domain, for example "msp.example"
	Kind   Kind
	Tenant string // set for agents only
	Name   string // agent id, operator name or controller name
}

// Agent returns the ID of an agent.
func Agent(domain, tenant, agentID string) ID {
	return ID{Domain: domain, Kind: KindAgent, Tenant: tenant, Name: agentID}
}

// Operator returns the ID of an operator.
func Operator(domain, name string) ID {
	return ID{Domain: domain, Kind: KindOperator, Name: name}
}

// Controller returns the ID of a controller.
func Controller(domain, name string) ID {
	return ID{Domain: domain, Kind: KindController, Name: name}
}

// URL returns the ID as a spiffe:// URL, for a certificate's URI SAN.
func (id ID) URL() *url.URL {
	u := &url.URL{Scheme: "spiffe", Host: id.Domain}
	switch id.Kind {
	case KindAgent:
		u.Path = "/tenant/" + id.Tenant + "/agent/" + id.Name
	default:
		u.Path = "/" + id.Kind.String() + "/" + id.Name
	}
	return u
}

// String returns the spiffe:// form.
func (id ID) String() string { return id.URL().String() }

// Validate reports whether every element of the ID is well formed.
func (id ID) Validate() error {
	if !validDomain(id.Domain) {
		return fmt.Errorf("identity: invalid trust domain %q", id.Domain)
	}
	if !ValidName(id.Name) {
		return fmt.Errorf("identity: invalid %s name %q", id.Kind, id.Name)
	}
	switch id.Kind {
	case KindAgent:
		if !ValidName(id.Tenant) {
			return fmt.Errorf("identity: invalid tenant %q", id.Tenant)
		}
	case KindOperator, KindController:
		if id.Tenant != "" {
			return fmt.Errorf("identity: %s ids carry no tenant", id.Kind)
		}
	default:
		return errors.New("identity: unknown kind")
	}
	return nil
}

func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if !namePattern.MatchString(label) || strings.Contains(label, ".") {
			return false
		}
	}
	return true
}

// Parse parses a spiffe:// URL into an ID and validates it.
func Parse(s string) (ID, error) {
	u, err := url.Parse(s)
	if err != nil {
		return ID{}, fmt.Errorf("identity: parse %q: %w", s, err)
	}
	return FromURL(u)
}

// FromURL converts a parsed URL into an ID and validates it.
func FromURL(u *url.URL) (ID, error) {
	if u.Scheme != "spiffe" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
		u.Port() != "" {
		return ID{}, fmt.Errorf("identity: %q is not a spiffe id", u.String())
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	id := ID{Domain: u.Host}
	switch {
	case len(parts) == 4 && parts[0] == "tenant" && parts[2] == "agent":
		id.Kind, id.Tenant, id.Name = KindAgent, parts[1], parts[3]
	case len(parts) == 2 && parts[0] == "operator":
		id.Kind, id.Name = KindOperator, parts[1]
	case len(parts) == 2 && parts[0] == "controller":
		id.Kind, id.Name = KindController, parts[1]
	default:
		return ID{}, fmt.Errorf("identity: unrecognised path in %q", u.String())
	}
	if err := id.Validate(); err != nil {
		return ID{}, err
	}
	return id, nil
}

// FromCertificate returns the single Ward identity in cert's URI SANs. A certificate with no
// spiffe URI, or with more than one, has no identity.
func FromCertificate(cert *x509.Certificate) (ID, error) {
	var found []*url.URL
	for _, u := range cert.URIs {
		if u.Scheme == "spiffe" {
			found = append(found, u)
		}
	}
	if len(found) != 1 {
		return ID{}, ErrNoIdentity
	}
	return FromURL(found[0])
}
