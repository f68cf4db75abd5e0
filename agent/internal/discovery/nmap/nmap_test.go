package nmap

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardsec/ward/agent/internal/discovery/merge"
	"github.com/wardsec/ward/agent/internal/discovery/netlab"
	"github.com/wardsec/ward/agent/internal/logtest"
	"github.com/wardsec/ward/pkg/site"
)

func TestMain(m *testing.M) {
	netlab.Main()
	goleak.VerifyTestMain(m)
}

func labSite(t *testing.T) *site.Config {
	t.Helper()
	c, err := site.Parse([]byte(`{"subnets":["` + netlab.ScannedSubnet + `"],
		"passive_subnets":["` + netlab.PassiveSubnet + `"],
		"exclude":["` + netlab.ExcludedAddr + `"],
		"probe_rate": 3000, "ports": "22,80,104,2575"}`))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMissingBinary(t *testing.T) {
	_, err := New(Config{Site: labSite(t), Binary: "/nonexistent/nmap", Log: logtest.New(t)})
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "apt-get install nmap") {
		t.Fatalf("err = %v, want ErrNotInstalled with a hint", err)
	}
}

func TestArgs(t *testing.T) {
	s := &Scanner{cfg: Config{Site: labSite(t), Privileged: true, Log: slog.Default()}}
	disc := strings.Join(s.discoveryArgs(), " ")
	svc := strings.Join(s.serviceArgs([]string{"10.77.1.10"}), " ")
	for _, args := range []string{disc, svc} {
		if !strings.Contains(args, "--exclude 10.77.2.0/24,10.77.1.99/32") {
			t.Errorf("passive subnet and excluded address not excluded: %s", args)
		}
		if !strings.Contains(args, "--max-rate 3000") {
			t.Errorf("no rate limit: %s", args)
		}
	}
	if strings.Contains(disc, "-sV") || strings.Contains(disc, "--script") {
		t.Errorf("the printer-port pass probes versions or runs scripts: %s", disc)
	}
	if !strings.Contains(svc, "--exclude-ports "+PrinterPorts) || !strings.Contains(svc, "-O") {
		t.Errorf("service pass: %s", svc)
	}
}

// TestScanClinic scans the namespace clinic from the collector's namespace.
func TestScanClinic(t *testing.T) {
	c := netlab.NewClinic(t)
	s, err := New(Config{Site: labSite(t), Binary: c.Wrapper(c.Collector, "nmap"),
		Privileged: true, NoDNS: true, Log: logtest.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	excluded := c.StartCapture(c.ExcludedLink)
	passive := c.StartCapture(c.PassiveBridge)

	var mu sync.Mutex
	set := merge.NewSet(nil)
	var last Progress
	start := time.Now()
	n, err := s.Scan(context.Background(), func(sg merge.Sighting) { set.Add(sg) },
		func(p Progress) { mu.Lock(); last = p; mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scan took %s, %d live hosts", time.Since(start).Round(time.Millisecond), n)

	byAddr := map[string]merge.Device{}
	for _, d := range set.Devices() {
		byAddr[d.Addresses[0].String()] = d
	}
	want := map[string]struct {
		port uint16
		text string
	}{
		netlab.ServerAddr:   {22, "ssh"},
		netlab.ModalityAddr: {104, "dicom"},
		netlab.EHRAddr:      {80, netlab.EHRTitle},
		netlab.HL7Addr:      {2575, ""},
		netlab.SwitchAddr:   {161, "snmp"},
	}
	for addr, w := range want {
		d, ok := byAddr[addr]
		if !ok {
			t.Errorf("%s not found; found %v", addr, keys(byAddr))
			continue
		}
		i := slices.IndexFunc(d.Services, func(s merge.Service) bool { return s.Port == w.port })
		if i < 0 {
			t.Errorf("%s: port %d not open: %+v", addr, w.port, d.Services)
			continue
		}
		sv := d.Services[i]
		all := strings.ToLower(sv.Name + " " + sv.Product + " " + sv.Extra)
		if !strings.Contains(all, strings.ToLower(w.text)) {
			t.Errorf("%s port %d: %q lacks %q", addr, w.port, all, w.text)
		}
		if d.MAC != c.MACs[nsOf(c, addr)] {
			t.Errorf("%s: mac %q, want %q", addr, d.MAC, c.MACs[nsOf(c, addr)])
		}
		t.Logf("%s: os %q services %+v", addr, d.OS, d.Services)
	}
	for _, addr := range []string{netlab.ExcludedAddr, netlab.QuietAddr} {
		if _, ok := byAddr[addr]; ok {
			t.Errorf("%s (excluded or passive) reported", addr)
		}
	}
	if last.Phase != "done" || last.HostsDone != last.HostsTotal || last.HostsTotal != 255 ||
		last.HostsFound != n {
		t.Errorf("final progress = %+v", last)
	}

	for name, capt := range map[string]*netlab.Capture{"excluded host": excluded,
		"passive subnet": passive} {
		for _, p := range capt.Stop() {
			if p.SrcMAC == c.MACs[c.Collector] || p.SrcIP == netlab.CollectorAddr ||
				p.SrcIP == netlab.CollectorAddrP {
				if p.ARPOp == 1 && p.DstIP != netlab.ExcludedAddr && name == "excluded host" {
					continue // a broadcast ARP request for another address
				}
				t.Errorf("%s: frame from the collector: %s", name, p)
			}
		}
	}
}

func TestScanCancel(t *testing.T) {
	c := netlab.NewClinic(t)
	s, err := New(Config{Site: labSite(t), Binary: c.Wrapper(c.Collector, "nmap"),
		Privileged: true, NoDNS: true, Log: logtest.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	start := time.Now()
	_, err = s.Scan(ctx, func(merge.Sighting) {}, func(p Progress) {
		if p.Phase == "services" {
			once.Do(cancel)
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("cancelled scan took %s", d)
	}
	out, _ := c.Exec(c.Collector, "sh", "-c", "ps -eo args | grep -c '^nmap' || true")
	if strings.TrimSpace(string(out)) != "0" {
		t.Errorf("nmap still running after cancel: %s", out)
	}
	_ = os.Getpid()
}

func nsOf(c *netlab.Clinic, addr string) string {
	return map[string]string{netlab.ServerAddr: c.Server, netlab.ModalityAddr: c.Modality,
		netlab.EHRAddr: c.EHR, netlab.HL7Addr: c.HL7, netlab.SwitchAddr: c.Switch}[addr]
}

func keys(m map[string]merge.Device) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
