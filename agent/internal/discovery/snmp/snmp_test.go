package snmp

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardsec/ward/agent/internal/discovery/merge"
	"github.com/wardsec/ward/agent/internal/discovery/netlab"
	"github.com/wardsec/ward/pkg/site"
)

func TestMain(m *testing.M) {
	netlab.Main()
	goleak.VerifyTestMain(m)
}

func TestPollClinicSwitch(t *testing.T) {
	c := netlab.NewClinic(t)
	c.RunInside(c.Collector, "TestPollInside")
}

// TestPollInside runs inside the collector's namespace (see TestPollClinicSwitch).
func TestPollInside(t *testing.T) {
	if !netlab.Inside() {
		t.Skip("runs inside the namespace clinic only")
	}
	addr := netip.MustParseAddr(netlab.SwitchAddr)
	v3 := site.SNMPCredential{Version: site.SNMPv3, User: netlab.SNMPUser,
		AuthProtocol: "SHA", AuthPassphrase: netlab.SNMPAuthPass, PrivProtocol: "AES",
		PrivPassphrase: netlab.SNMPPrivPass}
	v2c := site.SNMPCredential{Version: site.SNMPv2c, Community: netlab.SNMPCommunity}
	wrongV3 := v3
	wrongV3.AuthPassphrase = "not-the-passphrase"
	wrong2c := site.SNMPCredential{Version: site.SNMPv2c, Community: "guess-me"}

	tests := []struct {
		name      string
		creds     []site.SNMPCredential
		wantLevel string // "" for no answer
	}{
		{"v3 authPriv", []site.SNMPCredential{v3}, "authPriv"},
		{"v2c", []site.SNMPCredential{v2c}, "community"},
		{"wrong v3 then v2c", []site.SNMPCredential{wrongV3, v2c}, "community"},
		{"v3 first wins", []site.SNMPCredential{v3, v2c}, "authPriv"},
		{"nothing answers", []site.SNMPCredential{wrongV3, wrong2c}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Poller{Creds: tt.creds, Timeout: 500 * time.Millisecond}
			sg, err := p.Poll(context.Background(), addr)
			if tt.wantLevel == "" {
				if !errors.Is(err, ErrNoAnswer) {
					t.Fatalf("err = %v, want ErrNoAnswer", err)
				}
				for _, secret := range []string{"not-the-passphrase", "guess-me"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error repeats a secret: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(sg.Attributes["credential"], tt.wantLevel) {
				t.Errorf("credential = %q, want %s", sg.Attributes["credential"], tt.wantLevel)
			}
			check(t, sg)
		})
	}
}

func check(t *testing.T, sg merge.Sighting) {
	t.Helper()
	if sg.Method != merge.MethodSNMP || sg.Hostname != netlab.SwitchName ||
		sg.Description != netlab.SwitchDescr {
		t.Errorf("sighting = %+v", sg)
	}
	if got := sg.Attributes["sys_object_id"]; got != netlab.SwitchObjectID {
		t.Errorf("sys_object_id = %q, want %q", got, netlab.SwitchObjectID)
	}
	if !strings.Contains(sg.Attributes["interfaces"], "eth0") || sg.Attributes["if_count"] != "2" {
		t.Errorf("interfaces = %q (%s)", sg.Attributes["interfaces"], sg.Attributes["if_count"])
	}
	if sg.Attributes["sys_uptime"] == "" || sg.Attributes["sys_location"] != "Exam room 2" {
		t.Errorf("attributes = %v", sg.Attributes)
	}
	if sg.Attributes["macs"] == "" {
		t.Errorf("no interface MACs: %v", sg.Attributes)
	}
	if _, ok := sg.Attributes["lldp_neighbors"]; ok {
		t.Errorf("lldp neighbours from an agent that offers none: %v", sg.Attributes)
	}
}
