package merge

import (
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func TestMergeByMACAndAddress(t *testing.T) {
	s := NewSet(nil)
	ip := netip.MustParseAddr("10.20.0.5")

	// SNMP and mDNS see only the address, before anyone knows the MAC.
	s.Add(Sighting{Method: MethodSNMP, Time: at(10), Addr: ip, Hostname: "switch-1",
		Description: "Cisco IOS", Attributes: map[string]string{"sys_object_id": "1.3.6.1.4.1.9.1.1"}})
	s.Add(Sighting{Method: MethodMDNS, Time: at(5), Addr: ip, Hostname: "switch-1.local",
		Attributes: map[string]string{"mdns.services": "_http._tcp"}})
	if s.Len() != 1 {
		t.Fatalf("len = %d after two address sightings", s.Len())
	}

	// nmap and ARP bring the MAC (in two spellings): one device.
	s.Add(Sighting{Method: MethodNmap, Time: at(20), Addr: ip, MAC: "00-1B-54-AA-BB-CC",
		Hostname: "sw1.clinic.lan", Vendor: "Cisco Systems", OS: "Cisco IOS 15",
		Services: []Service{{Port: 22, Protocol: "tcp", Name: "ssh"}, {Port: 161,
			Protocol: "udp", Name: "snmp"}}})
	s.Add(Sighting{Method: MethodARP, Time: at(1), MAC: "00:1b:54:aa:bb:cc", Addr: ip})
	s.Add(Sighting{Method: MethodNmap, Time: at(30), Addr: ip, MAC: "00:1b:54:aa:bb:cc",
		Services: []Service{{Port: 22, Protocol: "tcp", Product: "OpenSSH", Version: "9.2"}}})

	devs := s.Devices()
	if len(devs) != 1 {
		t.Fatalf("devices = %+v", devs)
	}
	d := devs[0]
	if d.MAC != "00:1b:54:aa:bb:cc" || d.Key() != d.MAC {
		t.Errorf("mac = %q", d.MAC)
	}
	if d.Hostname != "switch-1" || d.Attributes["source.hostname"] != MethodSNMP {
		t.Errorf("hostname = %q from %q; SNMP's own name should win", d.Hostname,
			d.Attributes["source.hostname"])
	}
	if d.Vendor != "Cisco Systems" || d.Description != "Cisco IOS" || d.OS != "Cisco IOS 15" {
		t.Errorf("fields = %+v", d)
	}
	if got := d.MethodNames(); len(got) != 4 {
		t.Errorf("methods = %v", got)
	}
	if d.Methods[MethodNmap] != (Seen{at(20), at(30)}) || d.Methods[MethodARP] != (Seen{at(1), at(1)}) {
		t.Errorf("seen = %+v", d.Methods)
	}
	if !d.First.Equal(at(1)) || !d.Last.Equal(at(30)) {
		t.Errorf("first/last = %s %s", d.First, d.Last)
	}
	if d.Attributes["snmp.sys_object_id"] != "1.3.6.1.4.1.9.1.1" ||
		d.Attributes["mdns.services"] != "_http._tcp" {
		t.Errorf("attributes = %v", d.Attributes)
	}
	want := []Service{{Port: 22, Protocol: "tcp", Name: "ssh", Product: "OpenSSH", Version: "9.2"},
		{Port: 161, Protocol: "udp", Name: "snmp"}}
	if len(d.Services) != 2 || d.Services[0] != want[0] || d.Services[1] != want[1] {
		t.Errorf("services = %+v", d.Services)
	}
}

func TestDistinctDevices(t *testing.T) {
	s := NewSet(func() time.Time { return t0 })
	s.Add(Sighting{Method: MethodARP, MAC: "02:00:00:00:00:01", Addr: netip.MustParseAddr("10.0.0.1")})
	s.Add(Sighting{Method: MethodARP, MAC: "02:00:00:00:00:02", Addr: netip.MustParseAddr("10.0.0.2")})
	s.Add(Sighting{Method: MethodMDNS, Addr: netip.MustParseAddr("10.0.0.3")})
	if ok := s.Add(Sighting{Method: MethodARP, MAC: "ff:ff:ff:ff:ff:ff"}); ok {
		t.Error("broadcast MAC without address accepted")
	}
	if ok := s.Add(Sighting{Method: MethodARP, MAC: "garbage"}); ok {
		t.Error("bad MAC without address accepted")
	}

	devs := s.Devices()
	if len(devs) != 3 {
		t.Fatalf("devices = %+v", devs)
	}
	for i, want := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		if devs[i].Addresses[0].String() != want {
			t.Errorf("device %d = %v, want %s (sorted by address)", i, devs[i].Addresses, want)
		}
	}
	if devs[2].Key() != "10.0.0.3" || !devs[2].First.Equal(t0) {
		t.Errorf("address-keyed device = %+v", devs[2])
	}

	s.Remove(func(a netip.Addr) bool { return a == netip.MustParseAddr("10.0.0.2") })
	if s.Len() != 2 {
		t.Errorf("len after Remove = %d", s.Len())
	}
}

func TestDevicesAreCopies(t *testing.T) {
	s := NewSet(nil)
	s.Add(Sighting{Method: MethodSNMP, Addr: netip.MustParseAddr("10.0.0.1"),
		Attributes: map[string]string{"a": "b"}})
	d := s.Devices()[0]
	d.Attributes["snmp.a"] = "changed"
	if s.Devices()[0].Attributes["snmp.a"] != "b" {
		t.Error("Devices shares its maps with the set")
	}
}

func TestNormalizeMAC(t *testing.T) {
	for in, want := range map[string]string{
		"00:1B:54:aa:bb:cc": "00:1b:54:aa:bb:cc",
		"00-1b-54-aa-bb-cc": "00:1b:54:aa:bb:cc",
		"001b.54aa.bbcc":    "00:1b:54:aa:bb:cc",
		"00:00:00:00:00:00": "",
		"":                  "",
		"zz":                "",
	} {
		if got := NormalizeMAC(in); got != want {
			t.Errorf("NormalizeMAC(%q) = %q, want %q", in, got, want)
		}
	}
}
