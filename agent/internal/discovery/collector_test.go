package discovery

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardsec/ward/agent/internal/discovery/netlab"
	"github.com/wardsec/ward/agent/internal/logtest"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestMain(m *testing.M) {
	netlab.Main()
	goleak.VerifyTestMain(m)
}

// sink records reports and cancels when the complete one arrives.
type sink struct {
	mu      sync.Mutex
	reports []*wardv1.DiscoveryReport
	done    func()
}

func (s *sink) Enqueue(req *wardv1.ConnectRequest) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := req.GetDiscoveryReport()
	s.reports = append(s.reports, r)
	if r.GetComplete() && s.done != nil {
		s.done()
	}
	return uint64(len(s.reports)), nil
}

const labConfig = `{"subnets":["10.77.1.0/24"], "passive_subnets":["10.77.2.0/24"],
  "exclude":["10.77.1.99"], "probe_rate":3000, "ports":"22,80,104,2575",
  "snmp":[{"version":"v3","user":"wardpoll","auth_protocol":"SHA",
           "auth_passphrase":"lab-auth-pass-1","priv_protocol":"AES",
           "priv_passphrase":"lab-priv-pass-1"}]}`

// TestCollectorClinic runs the collector inside the clinic's collector namespace while a
// capture watches the passive-only subnet.
func TestCollectorClinic(t *testing.T) {
	c := netlab.NewClinic(t)
	passive := c.StartCapture(c.PassiveBridge)
	c.RunInside(c.Collector, "TestCollectorInside", "WANT_QUIET_MAC="+c.MACs[c.Quiet],
		"WANT_SWITCH_MAC="+c.MACs[c.Switch])

	pkts := passive.Stop()
	heard := 0
	for _, p := range pkts {
		if p.SrcIP == netlab.QuietAddr {
			heard++
		}
		if p.SrcIP == netlab.CollectorAddrP || p.SrcIP == netlab.CollectorAddr ||
			p.SrcMAC == c.MACs[c.Collector] {
			t.Errorf("the collector sent a frame on the passive-only subnet: %s", p)
		}
	}
	if heard == 0 {
		t.Errorf("the capture saw nothing from the quiet host (%d frames)", len(pkts))
	}
	t.Logf("passive subnet: %d frames captured, none from the collector", len(pkts))
}

func TestCollectorInside(t *testing.T) {
	if !netlab.Inside() {
		t.Skip("runs inside the namespace clinic only")
	}
	path := filepath.Join(t.TempDir(), ConfigFile)
	if err := os.WriteFile(path, []byte(labConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rec := &sink{done: cancel}
	log, logs := logtest.NewRecorder(t)
	col, err := New(Config{SitePath: path, Sink: rec, Log: log, Privileged: true,
		NoDNS: true, BatchSize: 3, ProgressEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := col.Run(ctx); err != nil {
		t.Fatal(err)
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	last := rec.reports[len(rec.reports)-1]
	if !last.GetComplete() || last.GetError() != "" || last.GetHostsDone() != 255 ||
		last.GetHostsFound() < 6 || last.GetSubnet() != netlab.ScannedSubnet {
		t.Fatalf("last report = %v", last)
	}
	devices := map[string]*wardv1.DiscoveredDevice{}
	progress := 0
	for i, r := range rec.reports {
		if r.GetScanId() != last.GetScanId() {
			t.Errorf("report %d has scan id %q, want %q", i, r.GetScanId(), last.GetScanId())
		}
		if r.GetComplete() != (i == len(rec.reports)-1) {
			t.Errorf("report %d complete = %v", i, r.GetComplete())
		}
		if len(r.GetDevices()) == 0 {
			progress++
		}
		if len(r.GetDevices()) > 3 {
			t.Errorf("report %d has %d devices, batch is 3", i, len(r.GetDevices()))
		}
		for _, d := range r.GetDevices() {
			devices[d.GetAddresses()[0]] = d
		}
	}
	if progress == 0 || !logs.Contains("discovery progress") {
		t.Errorf("no progress report or log line")
	}

	sw := devices[netlab.SwitchAddr]
	switch {
	case sw == nil:
		t.Fatalf("switch not reported; devices: %v", slices.Sorted(mapsKeys(devices)))
	case !slices.Equal(sw.GetMethods(), []string{"arp", "nmap", "snmp"}):
		t.Errorf("switch methods = %v", sw.GetMethods())
	case sw.GetMac() != os.Getenv("WANT_SWITCH_MAC") || sw.GetHostname() != netlab.SwitchName:
		t.Errorf("switch = %v", sw)
	case sw.GetDescription() != netlab.SwitchDescr ||
		sw.GetAttributes()["snmp.sys_object_id"] != netlab.SwitchObjectID ||
		sw.GetAttributes()["source.hostname"] != "snmp":
		t.Errorf("switch snmp data = %q %v", sw.GetDescription(), sw.GetAttributes())
	case sw.GetAttributes()["seen.snmp"] == "" || sw.GetFirstSeen() == nil:
		t.Errorf("switch seen times = %v", sw.GetAttributes())
	}
	if !strings.Contains(sw.GetAttributes()["snmp.credential"], "authPriv") {
		t.Errorf("switch polled with %q", sw.GetAttributes()["snmp.credential"])
	}

	mod := devices[netlab.ModalityAddr]
	if mod == nil || !hasService(mod, 104, "dicom-ping") {
		t.Errorf("modality = %v", mod)
	}
	ehr := devices[netlab.EHRAddr]
	if ehr == nil || !hasService(ehr, 80, netlab.EHRTitle) {
		t.Errorf("ehr = %v", ehr)
	}
	if hl7 := devices[netlab.HL7Addr]; hl7 == nil || !hasService(hl7, 2575, "") {
		t.Errorf("hl7 = %v", hl7)
	}
	if srv := devices[netlab.ServerAddr]; srv == nil || !hasService(srv, 22, "OpenSSH") {
		t.Errorf("server = %v", srv)
	}

	quiet := devices[netlab.QuietAddr]
	if quiet == nil || !slices.Equal(quiet.GetMethods(), []string{"arp"}) ||
		quiet.GetMac() != os.Getenv("WANT_QUIET_MAC") || len(quiet.GetServices()) > 0 {
		t.Errorf("quiet passive host = %v", quiet)
	}
	if d := devices[netlab.ExcludedAddr]; d != nil {
		t.Errorf("excluded host reported: %v", d)
	}
}

func hasService(d *wardv1.DiscoveredDevice, port uint32, text string) bool {
	for _, s := range d.GetServices() {
		if s.GetPort() == port && strings.Contains(s.GetName()+s.GetProduct()+s.GetExtra(), text) {
			return true
		}
	}
	return false
}

func mapsKeys(m map[string]*wardv1.DiscoveredDevice) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
