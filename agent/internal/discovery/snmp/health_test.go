package snmp

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wardsec/ward/agent/internal/discovery/netlab"
	"github.com/wardsec/ward/pkg/site"
)

func TestHealthClinicSwitch(t *testing.T) {
	c := netlab.NewClinic(t)
	c.RunInside(c.Collector, "TestHealthInside")
}

// TestHealthInside runs inside the collector's namespace (see TestHealthClinicSwitch).
func TestHealthInside(t *testing.T) {
	if !netlab.Inside() {
		t.Skip("runs inside the namespace clinic only")
	}
	sw := netip.MustParseAddr(netlab.SwitchAddr)
	silent := netip.MustParseAddr(netlab.ServerAddr) // up, but no SNMP agent
	nobody := netip.MustParseAddr("10.77.1.77")      // no host at all: timeouts
	v3 := site.SNMPCredential{Version: site.SNMPv3, User: netlab.SNMPUser,
		AuthProtocol: "SHA", AuthPassphrase: netlab.SNMPAuthPass, PrivProtocol: "AES",
		PrivPassphrase: netlab.SNMPPrivPass}
	v2c := site.SNMPCredential{Version: site.SNMPv2c, Community: netlab.SNMPCommunity}
	wrong2c := site.SNMPCredential{Version: site.SNMPv2c, Community: "guess-me"}

	tests := []struct {
		name     string
		addr     netip.Addr
		creds    []site.SNMPCredential
		wantCred string // "" for no answer
	}{
		{"v3 authPriv", sw, []site.SNMPCredential{v3}, "authPriv"},
		{"v2c", sw, []site.SNMPCredential{v2c}, "community"},
		{"wrong community then v3", sw, []site.SNMPCredential{wrong2c, v3}, "authPriv"},
		{"no SNMP agent", silent, []site.SNMPCredential{v3, v2c}, ""},
		{"nobody there", nobody, []site.SNMPCredential{v2c}, ""},
		{"wrong community only", sw, []site.SNMPCredential{wrong2c}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &HealthPoller{Creds: tt.creds, Timeout: 300 * time.Millisecond}
			h, err := p.Health(context.Background(), tt.addr)
			if tt.wantCred == "" {
				if !errors.Is(err, ErrNoAnswer) {
					t.Fatalf("err = %v, want ErrNoAnswer", err)
				}
				for _, secret := range []string{netlab.SNMPAuthPass, netlab.SNMPPrivPass,
					netlab.SNMPCommunity, "guess-me"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error repeats a secret: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(h.Credential, tt.wantCred) {
				t.Errorf("credential = %q, want %s", h.Credential, tt.wantCred)
			}
			if h.Uptime == 0 || h.SysName != netlab.SwitchName {
				t.Errorf("uptime %d, sysName %q", h.Uptime, h.SysName)
			}
			checkInterfaces(t, h.Interfaces)
		})
	}
	t.Run("remembers the credential", func(t *testing.T) { remembers(t, sw, v2c, wrong2c) })
}

// remembers polls twice: the second poll tries the credential that answered first, so
// a wrong one listed before it costs no timeout.
func remembers(t *testing.T, sw netip.Addr, v2c, wrong site.SNMPCredential) {
	p := &HealthPoller{Creds: []site.SNMPCredential{wrong, v2c},
		Timeout: 300 * time.Millisecond}
	if _, err := p.Health(context.Background(), sw); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := p.Health(context.Background(), sw); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 600*time.Millisecond {
		t.Errorf("second poll took %s: it tried the wrong community first", d)
	}
}

func checkInterfaces(t *testing.T, ifs []Interface) {
	t.Helper()
	var eth0 *Interface
	for i := range ifs {
		if ifs[i].Name == "eth0" {
			eth0 = &ifs[i]
		}
		if i > 0 && ifs[i].Index <= ifs[i-1].Index {
			t.Errorf("interfaces not ordered by ifIndex: %+v", ifs)
		}
	}
	if len(ifs) != 2 || eth0 == nil {
		t.Fatalf("interfaces = %+v, want lo and eth0", ifs)
	}
	if eth0.OperStatus != 1 || eth0.Index == 0 {
		t.Errorf("eth0 = %+v, want index set and oper status up (1)", *eth0)
	}
}
