package arp

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

// frame builds an Ethernet frame from hex pieces (spaces ignored).
func frame(t *testing.T, parts ...string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(strings.Join(parts, ""), " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	const (
		eth     = "ffffffffffff 0200000000aa"
		request = "0001 0800 06 04 0001 0200000000aa 0a000005 000000000000 0a000001"
	)
	tests := []struct {
		name    string
		frame   []byte
		ok      bool
		mac, ip string
	}{
		{"request", frame(t, eth, "0806", request), true, "02:00:00:00:00:aa", "10.0.0.5"},
		{"behind a vlan tag", frame(t, eth, "8100 0064 0806", request), true,
			"02:00:00:00:00:aa", "10.0.0.5"},
		{"probe without a sender address", frame(t, eth, "0806",
			"0001 0800 06 04 0001 0200000000aa 00000000 000000000000 0a000001"), false, "", ""},
		{"ipv4, not arp", frame(t, eth, "0800", request), false, "", ""},
		{"not ethernet hardware", frame(t, eth, "0806",
			"0006 0800 06 04 0001 0200000000aa 0a000005 000000000000 0a000001"), false, "", ""},
		{"truncated", frame(t, eth, "0806", "0001 0800 06 04"), false, "", ""},
		{"runt", frame(t, "ffff"), false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sg, ok := parse(tt.frame)
			if ok != tt.ok {
				t.Fatalf("parse ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if sg.MAC != tt.mac || sg.Addr != netip.MustParseAddr(tt.ip) {
				t.Errorf("sender = %s %s, want %s %s", sg.MAC, sg.Addr, tt.mac, tt.ip)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 42))
	f.Fuzz(func(t *testing.T, b []byte) {
		parse(b) // must not panic on any input
	})
}
