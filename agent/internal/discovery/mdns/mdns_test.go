package mdns

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/wardsec/ward/agent/internal/discovery/merge"
	"github.com/wardsec/ward/agent/internal/discovery/netlab"
)

// envResponder turns a copy of the test binary into a test mDNS responder.
const envResponder = "WARD_MDNS_TEST_RESPONDER"

func TestMain(m *testing.M) {
	netlab.Main()
	if raw := os.Getenv(envResponder); raw != "" {
		var r responder
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			fmt.Fprintln(os.Stderr, "responder:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "responder:", r.serve())
		os.Exit(1)
	}
	goleak.VerifyTestMain(m)
}

// responder is a small DNS-SD responder for tests: one host offering services.
type responder struct {
	Iface    string
	Host     string // "printer-2f.local."
	Addr     string // its IPv4 address
	Services []service
	// Minimal answers each question with its own record only, so the browser must ask
	// for SRV, TXT and A itself.
	Minimal bool
}

type service struct {
	Type     string // "_ipp._tcp.local."
	Instance string // "Front Desk Printer"
	Port     uint16
	TXT      []string
}

func (r *responder) serve() error {
	ifc, err := net.InterfaceByName(r.Iface)
	if err != nil {
		return err
	}
	conn, err := net.ListenMulticastUDP("udp4", ifc, net.UDPAddrFromAddrPort(Group))
	if err != nil {
		return err
	}
	buf := make([]byte, 9000)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return err
		}
		var q dnsmessage.Message
		if q.Unpack(buf[:n]) != nil || q.Header.Response {
			continue
		}
		ans := r.answer(q.Questions)
		if len(ans.Answers) == 0 {
			continue
		}
		b, err := ans.Pack()
		if err != nil {
			return err
		}
		out, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(from))
		if err != nil {
			return err
		}
		_, _ = out.Write(b)
		out.Close()
	}
}

func (r *responder) answer(qs []dnsmessage.Question) dnsmessage.Message {
	m := dnsmessage.Message{Header: dnsmessage.Header{Response: true, Authoritative: true}}
	hdr := func(name string, t dnsmessage.Type) dnsmessage.ResourceHeader {
		return dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Type: t,
			Class: dnsmessage.ClassINET, TTL: 120}
	}
	a := dnsmessage.Resource{Header: hdr(r.Host, dnsmessage.TypeA),
		Body: &dnsmessage.AResource{A: netip.MustParseAddr(r.Addr).As4()}}
	for _, q := range qs {
		name := strings.ToLower(q.Name.String())
		for _, s := range r.Services {
			inst := s.Instance + "." + s.Type
			rsrv := dnsmessage.Resource{Header: hdr(inst, dnsmessage.TypeSRV),
				Body: &dnsmessage.SRVResource{Target: dnsmessage.MustNewName(r.Host), Port: s.Port}}
			rtxt := dnsmessage.Resource{Header: hdr(inst, dnsmessage.TypeTXT),
				Body: &dnsmessage.TXTResource{TXT: s.TXT}}
			switch {
			case q.Type == dnsmessage.TypePTR && name == enumeration:
				m.Answers = append(m.Answers, dnsmessage.Resource{Header: hdr(enumeration,
					dnsmessage.TypePTR), Body: &dnsmessage.PTRResource{
					PTR: dnsmessage.MustNewName(s.Type)}})
			case q.Type == dnsmessage.TypePTR && name == s.Type:
				m.Answers = append(m.Answers, dnsmessage.Resource{Header: hdr(s.Type,
					dnsmessage.TypePTR), Body: &dnsmessage.PTRResource{
					PTR: dnsmessage.MustNewName(inst)}})
				if !r.Minimal {
					m.Additionals = append(m.Additionals, rsrv, rtxt, a)
				}
			case q.Type == dnsmessage.TypeSRV && strings.EqualFold(q.Name.String(), inst):
				m.Answers = append(m.Answers, rsrv)
			case q.Type == dnsmessage.TypeTXT && strings.EqualFold(q.Name.String(), inst):
				m.Answers = append(m.Answers, rtxt)
			}
		}
		if q.Type == dnsmessage.TypeA && name == strings.ToLower(r.Host) {
			m.Answers = append(m.Answers, a)
		}
	}
	return m
}

func TestCollectionFoldsAnswers(t *testing.T) {
	printer := &responder{Host: "printer-2f.local.", Addr: "10.1.1.30", Services: []service{
		{Type: "_ipp._tcp.local.", Instance: "Front Desk", Port: 631,
			TXT: []string{"ty=HP LaserJet Pro M404", "usb_MFG=HP", "rp=ipp/print"}},
		{Type: "_pdl-datastream._tcp.local.", Instance: "Front Desk", Port: 9100},
	}}
	phone := &responder{Host: "sep001122.local.", Addr: "10.1.1.40", Minimal: true,
		Services: []service{{Type: "_sip._udp.local.", Instance: "Exam 2", Port: 5060,
			TXT: []string{"md=Yealink T54W"}}}}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

	c := newCollection("eth0")
	ask := func(r *responder, qs []dnsmessage.Question) {
		m := r.answer(qs)
		c.add(netip.MustParseAddr(r.Addr), &m, now)
	}
	var first []dnsmessage.Question
	for _, s := range DefaultServices {
		q, err := question(s, dnsmessage.TypePTR)
		if err != nil {
			t.Fatal(err)
		}
		first = append(first, q)
	}
	ask(printer, first)
	ask(phone, first)
	asked := map[string]bool{}
	for range 3 { // the browser's follow-up rounds
		qs := c.missing(asked)
		ask(printer, qs)
		ask(phone, qs)
	}
	if qs := c.missing(asked); len(qs) != 0 {
		t.Errorf("still missing after follow-ups: %v", qs)
	}

	got := map[string]merge.Sighting{}
	for _, sg := range c.sightings() {
		got[sg.Addr.String()] = sg
	}
	if len(got) != 2 {
		t.Fatalf("sightings for %d addresses, want 2: %+v", len(got), got)
	}
	p := got["10.1.1.30"]
	if p.Method != merge.MethodMDNS || p.Hostname != "printer-2f" ||
		p.Description != "HP LaserJet Pro M404" || !p.Time.Equal(now) {
		t.Errorf("printer sighting = %+v", p)
	}
	if p.Attributes["services"] != "_ipp._tcp,_pdl-datastream._tcp" ||
		p.Attributes["manufacturer"] != "HP" || p.Attributes["instance"] != "Front Desk" {
		t.Errorf("printer attributes = %v", p.Attributes)
	}
	if len(p.Services) != 2 || p.Services[0].Port != 631 || p.Services[0].Name != "ipp" ||
		p.Services[1].Port != 9100 || p.Services[1].Protocol != "tcp" {
		t.Errorf("printer services = %+v", p.Services)
	}
	ph := got["10.1.1.40"]
	if ph.Hostname != "sep001122" || ph.Description != "Yealink T54W" ||
		len(ph.Services) != 1 || ph.Services[0].Protocol != "udp" || ph.Services[0].Port != 5060 {
		t.Errorf("phone sighting = %+v", ph)
	}
}

func TestServiceType(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Front Desk._ipp._tcp.local.", "_ipp._tcp.local."},
		{"a.b._sip._udp.local.", "_sip._udp.local."},
		{"_ipp._tcp.local.", "_ipp._tcp.local."},
		{"printer.local.", ""},
	} {
		if got := serviceType(tt.in); got != tt.want {
			t.Errorf("serviceType(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestBrowseNoInterfaces(t *testing.T) {
	if err := Browse(context.Background(), Config{}, func(merge.Sighting) {
		t.Error("found something without interfaces")
	}); err != nil {
		t.Fatal(err)
	}
	err := Browse(context.Background(), Config{Interfaces: []string{"nonexistent0"}},
		func(merge.Sighting) {})
	if err == nil || !strings.Contains(err.Error(), "nonexistent0") {
		t.Fatalf("Browse on a missing interface: %v", err)
	}
}

// TestBrowseInNamespaces browses a real network: a printer and a minimal phone
// responder on one bridge, the browser in a third namespace.
func TestBrowseInNamespaces(t *testing.T) {
	l := netlab.New(t)
	l.Bridge("brm")
	browser := l.Namespace("browser")
	l.Attach(browser, "eth0", "brm", "10.77.8.2/24")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []responder{
		{Iface: "eth0", Host: "printer-2f.local.", Addr: "10.77.8.30", Services: []service{
			{Type: "_ipp._tcp.local.", Instance: "Front Desk", Port: 631,
				TXT: []string{"ty=HP LaserJet Pro M404", "usb_MFG=HP"}}}},
		{Iface: "eth0", Host: "cam-lobby.local.", Addr: "10.77.8.40", Minimal: true,
			Services: []service{{Type: "_axis-video._tcp.local.", Instance: "Lobby", Port: 80,
				TXT: []string{"model=AXIS M3106"}}}},
	} {
		ns := l.Namespace(strings.Split(r.Host, ".")[0])
		l.Attach(ns, "eth0", "brm", r.Addr+"/24")
		b, _ := json.Marshal(r)
		cmd := l.Command(ns, self, "-test.run=^$")
		cmd.Env = append(os.Environ(), envResponder+"="+string(b))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { netlab.Stop(cmd) })
	}
	time.Sleep(300 * time.Millisecond) // the responders join the group
	l.RunInside(browser, "TestBrowseInside")
}

// TestBrowseInside runs inside the browser namespace of TestBrowseInNamespaces.
func TestBrowseInside(t *testing.T) {
	if !netlab.Inside() {
		t.Skip("runs inside a namespace of TestBrowseInNamespaces")
	}
	got := map[string]merge.Sighting{}
	start := time.Now()
	err := Browse(context.Background(), Config{Interfaces: []string{"eth0"},
		Wait: 1500 * time.Millisecond}, func(sg merge.Sighting) { got[sg.Addr.String()] = sg })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("browse took %s; found %+v", time.Since(start), got)
	if p := got["10.77.8.30"]; p.Hostname != "printer-2f" || p.Description != "HP LaserJet Pro M404" ||
		len(p.Services) != 1 || p.Services[0].Port != 631 {
		t.Errorf("printer = %+v", p)
	}
	if c := got["10.77.8.40"]; c.Hostname != "cam-lobby" || c.Description != "AXIS M3106" ||
		c.Attributes["services"] != "_axis-video._tcp" {
		t.Errorf("camera = %+v", c)
	}
	if len(got) != 2 {
		t.Errorf("found %d responders, want 2", len(got))
	}
}
