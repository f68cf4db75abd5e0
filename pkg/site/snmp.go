package site

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
)

// SNMP versions a credential may name.
const (
	SNMPv3  = "v3"
	SNMPv2c = "v2c"
)

// Protocols a v3 credential may name (net-snmp's spelling).
var (
	AuthProtocols = []string{"MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"}
	PrivProtocols = []string{"DES", "AES", "AES192", "AES256"}
)

// minPassphrase is the shortest v3 passphrase net-snmp accepts.
const minPassphrase = 8

// SNMPCredential is one way to speak SNMP to the site's devices. It holds secrets: String
// and LogValue redact them, and they never appear in validation errors.
type SNMPCredential struct {
	// Version is "v3" (preferred) or "v2c" (allowed, with a warning).
	Version string `json:"version"`
	// Community is the v2c community string.
	Community string `json:"community,omitempty"`
	// User is the v3 security name.
	User string `json:"user,omitempty"`
	// AuthProtocol is one of AuthProtocols; empty means noAuthNoPriv (refused).
	AuthProtocol string `json:"auth_protocol,omitempty"`
	// AuthPassphrase is the v3 authentication passphrase.
	AuthPassphrase string `json:"auth_passphrase,omitempty"`
	// PrivProtocol is one of PrivProtocols; empty means authNoPriv (allowed, with a warning).
	PrivProtocol string `json:"priv_protocol,omitempty"`
	// PrivPassphrase is the v3 privacy passphrase.
	PrivPassphrase string `json:"priv_passphrase,omitempty"`
}

// Validate checks the credential without repeating any secret in its error.
func (c SNMPCredential) Validate() error {
	switch c.Version {
	case SNMPv2c:
		if c.Community == "" {
			return errors.New("v2c needs a community")
		}
		return nil
	case SNMPv3:
	default:
		return fmt.Errorf("version %q: want v3 or v2c", c.Version)
	}

	var errs []error
	if c.User == "" {
		errs = append(errs, errors.New("v3 needs a user"))
	}
	if !slices.Contains(AuthProtocols, c.AuthProtocol) {
		errs = append(errs, fmt.Errorf("auth_protocol %q: want one of %v (noAuthNoPriv is "+
			"not allowed)", c.AuthProtocol, AuthProtocols))
	}
	if len(c.AuthPassphrase) < minPassphrase {
		errs = append(errs, fmt.Errorf("auth_passphrase: at least %d characters", minPassphrase))
	}
	if c.PrivProtocol != "" {
		if !slices.Contains(PrivProtocols, c.PrivProtocol) {
			errs = append(errs, fmt.Errorf("priv_protocol %q: want one of %v", c.PrivProtocol,
				PrivProtocols))
		}
		if len(c.PrivPassphrase) < minPassphrase {
			errs = append(errs, fmt.Errorf("priv_passphrase: at least %d characters",
				minPassphrase))
		}
	}
	return errors.Join(errs...)
}

// Level returns the v3 security level ("authPriv", "authNoPriv") or "community" for v2c.
func (c SNMPCredential) Level() string {
	switch {
	case c.Version == SNMPv2c:
		return "community"
	case c.PrivProtocol != "":
		return "authPriv"
	}
	return "authNoPriv"
}

// String describes the credential without its secrets.
func (c SNMPCredential) String() string {
	if c.Version == SNMPv2c {
		return "snmp v2c community=[redacted]"
	}
	return fmt.Sprintf("snmp v3 user=%s %s auth=%s priv=%s", c.User, c.Level(),
		c.AuthProtocol, c.PrivProtocol)
}

// LogValue logs the credential without its secrets.
func (c SNMPCredential) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Redacted returns a copy with every secret replaced by "[redacted]" where one was set,
// for showing a configuration to operators.
func (c SNMPCredential) Redacted() SNMPCredential {
	for _, s := range []*string{&c.Community, &c.AuthPassphrase, &c.PrivPassphrase} {
		if *s != "" {
			*s = "[redacted]"
		}
	}
	return c
}
