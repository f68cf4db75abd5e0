package enroll

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestCheckCSR(t *testing.T) {
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	good, err := pki.NewCSR(key, "agent")
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wrongCurve := mustCSR(t, p384)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wrongType := mustCSR(t, edKey)
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)-5] ^= 0xff

	tests := []struct {
		name string
		der  []byte
		ok   bool
	}{
		{"p256", good, true},
		{"empty", nil, false},
		{"garbage", []byte("not a csr at all"), false},
		{"too large", make([]byte, MaxCSRBytes+1), false},
		{"p384", wrongCurve, false},
		{"ed25519", wrongType, false},
		{"bad signature", tampered, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckCSR(tt.der)
			if tt.ok && err != nil {
				t.Fatalf("CheckCSR = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrBadCSR) {
				t.Fatalf("CheckCSR = %v, want ErrBadCSR", err)
			}
		})
	}
}

func mustCSR(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader,
		&x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestHostFacts(t *testing.T) {
	valid := func() *wardv1.HostFacts {
		return &wardv1.HostFacts{
			Hostname: "srv-01", Os: "debian", OsVersion: "12", Kernel: "6.1.0-18-amd64",
			Arch: "amd64", MachineId: strings.Repeat("a", 32),
			Addresses: []string{"192.0.2.7", "2001:db8::1/64"}, AgentVersion: "v0.1.0",
			Roles: []string{"host"},
		}
	}
	tests := []struct {
		name   string
		mutate func(h *wardv1.HostFacts)
		ok     bool
	}{
		{"valid", func(*wardv1.HostFacts) {}, true},
		{"long hostname", func(h *wardv1.HostFacts) { h.Hostname = strings.Repeat("h", 254) }, false},
		{"control char", func(h *wardv1.HostFacts) { h.Os = "deb\x1bian" }, false},
		{"bad utf8", func(h *wardv1.HostFacts) { h.Kernel = "\xff\xfe" }, false},
		{"long machine id", func(h *wardv1.HostFacts) { h.MachineId = strings.Repeat("a", 65) }, false},
		{"not an address", func(h *wardv1.HostFacts) { h.Addresses = []string{"example.org"} }, false},
		{"empty address", func(h *wardv1.HostFacts) { h.Addresses = []string{""} }, false},
		{"too many addresses", func(h *wardv1.HostFacts) {
			h.Addresses = make([]string, maxAddresses+1)
			for i := range h.Addresses {
				h.Addresses[i] = "192.0.2.1"
			}
		}, false},
		{"too many roles", func(h *wardv1.HostFacts) {
			h.Roles = strings.Split(strings.Repeat("r,", maxRoles), ",")
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := valid()
			tt.mutate(h)
			got, err := HostFacts(h)
			if !tt.ok {
				if !errors.Is(err, ErrBadHostFacts) {
					t.Fatalf("HostFacts = %v, want ErrBadHostFacts", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("HostFacts = %v", err)
			}
			if got.Hostname != h.Hostname || len(got.Addresses) != 2 || got.Roles[0] != "host" {
				t.Fatalf("HostFacts = %+v", got)
			}
		})
	}
}

func TestRefusalLimiter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := newRefusalLimiter(rate.Every(time.Minute/5), 3, 100)
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")

	for i := range 3 {
		if l.blocked(a, now) {
			t.Fatalf("blocked after %d refusals, burst is 3", i)
		}
		l.refused(a, now)
	}
	if !l.blocked(a, now) {
		t.Fatal("not blocked after the burst")
	}
	if l.blocked(b, now) {
		t.Fatal("another address is blocked")
	}
	if !l.blocked(netip.MustParseAddr("::ffff:192.0.2.1"), now) {
		t.Fatal("the IPv4-mapped form escapes the limit")
	}
	if l.blocked(a, now.Add(12*time.Second+time.Millisecond)) {
		t.Fatal("still blocked after one refusal's worth of time")
	}

	// One IPv6 /64 is one source.
	v6 := netip.MustParseAddr("2001:db8:1:2::1")
	for range 3 {
		l.refused(v6, now)
	}
	if !l.blocked(netip.MustParseAddr("2001:db8:1:2:ffff::9"), now) {
		t.Fatal("another address of the same /64 is not blocked")
	}
}

func TestRefusalLimiterBounded(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const max = 1000
	l := newRefusalLimiter(rate.Every(time.Minute), 2, max)

	for i := range 20 * max {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.refused(addr, now)
		if n := l.size(); n > max {
			t.Fatalf("limiter remembers %d sources, max %d", n, max)
		}
	}

	// When the map is full, sources whose bucket has refilled go first: a source that is
	// blocked right now keeps its state.
	l = newRefusalLimiter(rate.Every(time.Minute), 2, max)
	for i := range max - 1 {
		l.refused(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), now)
	}
	later := now.Add(time.Hour)
	hot := netip.MustParseAddr("198.51.100.1")
	l.refused(hot, later)
	l.refused(hot, later)
	l.refused(netip.MustParseAddr("198.51.100.2"), later)
	if !l.blocked(hot, later) {
		t.Fatal("a blocked source was evicted while refilled sources could go")
	}
	if n := l.size(); n != 2 {
		t.Fatalf("limiter remembers %d sources after eviction, want 2", n)
	}
}
