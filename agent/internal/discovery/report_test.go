package discovery

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wardsec/ward/agent/internal/discovery/merge"
)

func TestDeviceProtoBoundsAndScrub(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	attrs := map[string]string{}
	for i := range 100 {
		attrs[fmt.Sprintf("snmp.k%03d", i)] = "v"
	}
	d := merge.Device{
		MAC:         "00:1b:54:aa:bb:cc",
		Addresses:   []netip.Addr{netip.MustParseAddr("10.0.0.5")},
		Hostname:    "reception-pc",
		Description: "Patient: John Smith MRN: 12345678 " + strings.Repeat("é", 5000),
		Services: []merge.Service{{Port: 80, Protocol: "tcp", Name: "http",
			Product: strings.Repeat("x", 300), Extra: "\nhttp-title: DOB 01/02/1980"}},
		Methods: map[string]merge.Seen{"nmap": {First: now, Last: now.Add(time.Minute)},
			"snmp": {First: now, Last: now}},
		Attributes: attrs,
		First:      now, Last: now.Add(time.Minute),
	}
	p := deviceProto(d)

	if len(p.GetDescription()) > maxText || !utf8.ValidString(p.GetDescription()) {
		t.Errorf("description: %d bytes, valid %v", len(p.GetDescription()),
			utf8.ValidString(p.GetDescription()))
	}
	for _, phi := range []string{"John Smith", "12345678", "01/02/1980"} {
		if strings.Contains(p.GetDescription()+p.GetServices()[0].GetExtra(), phi) {
			t.Errorf("PHI %q left in the report", phi)
		}
	}
	if len(p.GetServices()[0].GetProduct()) != maxID {
		t.Errorf("product: %d bytes", len(p.GetServices()[0].GetProduct()))
	}
	if len(p.GetAttributes()) != maxAttributes {
		t.Errorf("attributes: %d", len(p.GetAttributes()))
	}
	if got := p.GetAttributes()["seen.nmap"]; got != "2026-12-03T10:00:00Z/2026-12-03T10:01:00Z" {
		t.Errorf("seen.nmap = %q", got)
	}
	if p.GetMac() != d.MAC || p.GetAddresses()[0] != "10.0.0.5" ||
		strings.Join(p.GetMethods(), ",") != "nmap,snmp" || !p.GetLastSeen().AsTime().Equal(d.Last) {
		t.Errorf("device = %v", p)
	}
}
