package enroll

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"unicode"
	"unicode/utf8"

	"github.com/wardsec/ward/controller/internal/store"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Bounds on what an agent may send about itself.
const (
	MaxCSRBytes      = 4096 // a P-256 CSR is about 250 bytes
	MaxTokenBytes    = 256
	maxHostname      = 253
	maxShortField    = 128 // os, os_version, kernel, arch, agent_version
	maxMachineID     = 64
	maxAddresses     = 64
	maxAddressLength = 64
	maxRoles         = 8
	maxRoleLength    = 32
)

// ErrBadCSR is returned by CheckCSR for any request that is not a well-signed PKCS#10 CSR
// for an ECDSA P-256 key.
var ErrBadCSR = errors.New("enroll: bad certificate signing request")

// ErrBadHostFacts is returned by HostFacts for facts that exceed the bounds or carry
// control characters.
var ErrBadHostFacts = errors.New("enroll: bad host facts")

// CheckCSR reports whether der is a PKCS#10 certificate signing request, at most
// MaxCSRBytes long, for an ECDSA P-256 key, with a valid self-signature. Its names are
// not looked at: the controller names the agent. Errors wrap ErrBadCSR.
func CheckCSR(der []byte) error {
	_, err := csrKey(der)
	return err
}

// csrKey does the checks of CheckCSR and returns the request's key.
func csrKey(der []byte) (*ecdsa.PublicKey, error) {
	if len(der) == 0 || len(der) > MaxCSRBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadCSR, len(der))
	}

	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCSR, err)
	}

	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: key is not ECDSA P-256", ErrBadCSR)
	}

	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCSR, err)
	}
	return pub, nil
}

// HostFacts validates the facts an agent sent and converts them to the store's form. A nil
// pb gives empty facts. Every string must be valid UTF-8 without control characters and
// within its bound; addresses must be IP addresses (optionally with a prefix length).
// Errors wrap ErrBadHostFacts and name the field, never echo its value.
func HostFacts(pb *wardv1.HostFacts) (store.HostFacts, error) {
	if pb == nil {
		return store.HostFacts{}, nil
	}

	fields := []struct {
		name  string
		value string
		max   int
	}{
		{"hostname", pb.GetHostname(), maxHostname},
		{"os", pb.GetOs(), maxShortField},
		{"os_version", pb.GetOsVersion(), maxShortField},
		{"kernel", pb.GetKernel(), maxShortField},
		{"arch", pb.GetArch(), maxShortField},
		{"machine_id", pb.GetMachineId(), maxMachineID},
		{"agent_version", pb.GetAgentVersion(), maxShortField},
	}
	for _, f := range fields {
		if !cleanString(f.value, f.max) {
			return store.HostFacts{}, fmt.Errorf("%w: %s", ErrBadHostFacts, f.name)
		}
	}

	if err := checkList("addresses", pb.GetAddresses(), maxAddresses, maxAddressLength,
		validAddress); err != nil {
		return store.HostFacts{}, err
	}
	if err := checkList("roles", pb.GetRoles(), maxRoles, maxRoleLength, nil); err != nil {
		return store.HostFacts{}, err
	}

	return store.HostFacts{
		Hostname:     pb.GetHostname(),
		OS:           pb.GetOs(),
		OSVersion:    pb.GetOsVersion(),
		Kernel:       pb.GetKernel(),
		Arch:         pb.GetArch(),
		MachineID:    pb.GetMachineId(),
		Addresses:    append([]string(nil), pb.GetAddresses()...),
		AgentVersion: pb.GetAgentVersion(),
		Roles:        append([]string(nil), pb.GetRoles()...),
	}, nil
}

// checkList checks a repeated field's count, each element's bound and, when valid is not
// nil, each element's form.
func checkList(name string, list []string, maxCount, maxLen int, valid func(string) bool) error {
	if len(list) > maxCount {
		return fmt.Errorf("%w: %s: more than %d", ErrBadHostFacts, name, maxCount)
	}
	for _, s := range list {
		if s == "" || !cleanString(s, maxLen) || (valid != nil && !valid(s)) {
			return fmt.Errorf("%w: %s", ErrBadHostFacts, name)
		}
	}
	return nil
}

// cleanString reports whether s is valid UTF-8, at most max bytes long and free of
// control characters.
func cleanString(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// validAddress accepts "192.0.2.7", "2001:db8::1" and the same with a prefix length.
func validAddress(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	_, err := netip.ParsePrefix(s)
	return err == nil
}
