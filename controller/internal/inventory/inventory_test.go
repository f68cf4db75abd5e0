package inventory

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/wardsec/ward/controller/internal/adminapi/adminapitest"
	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
	"github.com/wardsec/ward/pkg/classify"
	"github.com/wardsec/ward/pkg/nmapxml"
	"github.com/wardsec/ward/pkg/site"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*defaultPolicy[...]).processItems"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*Cache[...]).processItems"),
	)
}

// records is an evidence.Recorder that keeps entries.
type records struct {
	mu      sync.Mutex
	entries []evidence.Entry
}

func (r *records) Record(_ context.Context, e evidence.Entry) (evidence.Receipt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, e)
	return evidence.Receipt{Tenant: e.Tenant, Seq: uint64(len(r.entries))}, nil
}

func (r *records) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.entries {
		out = append(out, e.Type+" "+e.Subject)
	}
	return out
}

// bootstraps is a Bootstrapper that remembers requests and can fail.
type bootstraps struct {
	mu   sync.Mutex
	reqs []BootstrapRequest
	err  error
}

func (b *bootstraps) Bootstrap(_ context.Context, req BootstrapRequest) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reqs = append(b.reqs, req)
	return b.err
}

type env struct {
	st  *badger.Store
	inv *Inventory
	rec *records
}

// newEnv opens a real Badger store with tenant "t1" and collector agent "c1".
func newEnv(t *testing.T, boot Bootstrapper) *env {
	t.Helper()
	st, err := badger.Open(t.TempDir(), adminapitest.Log(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	if err := st.CreateTenant(ctx, store.Tenant{ID: "t1"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAgent(ctx, store.Agent{ID: "c1", Tenant: "t1",
		Roles: []string{store.AgentRoleHost, store.AgentRoleCollector}}); err != nil {
		t.Fatal(err)
	}
	rec := &records{}
	now := time.Date(2026, 3, 5, 9, 0, 0, 0, time.UTC)
	inv, err := New(Config{Store: st, Recorder: rec, Bootstrapper: boot,
		Log: adminapitest.Log(t), Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return &env{st: st, inv: inv, rec: rec}
}

func (e *env) ingest(t *testing.T, devs ...*wardv1.DiscoveredDevice) {
	t.Helper()
	err := e.inv.Ingest(context.Background(), "t1", "c1", &wardv1.DiscoveryReport{
		ScanId: "s1", Subnet: "10.0.0.0/24", Devices: devs, HostsDone: 254,
		HostsFound: uint32(len(devs))})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) device(t *testing.T, id string) store.Device {
	t.Helper()
	d, err := e.st.GetDevice(context.Background(), "t1", id)
	if err != nil {
		t.Fatalf("device %s: %v", id, err)
	}
	return d
}

var (
	linuxServer = &wardv1.DiscoveredDevice{Mac: "00:14:22:3A:5B:11",
		Addresses: []string{"10.0.0.11"}, OsGuess: "Linux 5.0 - 5.14", Methods: []string{"nmap"},
		Services: []*wardv1.DiscoveredService{{Port: 22, Protocol: "tcp", Name: "ssh",
			Product: "OpenSSH", Version: "9.2p1 Debian 2+deb12u2"}}}
	geModality = &wardv1.DiscoveredDevice{Mac: "44:4b:5d:10:33:40",
		Addresses: []string{"10.0.0.40"}, Methods: []string{"nmap"},
		Services: []*wardv1.DiscoveredService{{Port: 104, Protocol: "tcp", Name: "acr-nema"}}}
	ciscoSwitch = &wardv1.DiscoveredDevice{Mac: "00:00:0c:9a:11:02",
		Addresses: []string{"10.0.0.2"}, Methods: []string{"snmp"},
		Description: "Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), Version 15.2"}
	printer = &wardv1.DiscoveredDevice{Mac: "00:1b:a9:3c:20:51", Addresses: []string{"10.0.0.51"},
		Vendor: "Brother industries", Methods: []string{"mdns"},
		Services: []*wardv1.DiscoveredService{{Port: 80, Protocol: "tcp", Name: "http",
			Extra: "Brother HL-L2350DW series"}}}
)

func TestIngestClassifiesAndDecides(t *testing.T) {
	e := newEnv(t, nil)
	e.ingest(t, linuxServer, geModality, ciscoSwitch, printer)

	tests := []struct {
		id    string
		typ   classify.Type
		state store.DeviceState
	}{
		{"mac:00:14:22:3a:5b:11", classify.LinuxServer, store.DeviceApproved},
		{"mac:44:4b:5d:10:33:40", classify.DICOMModality, store.DevicePendingApproval},
		{"mac:00:00:0c:9a:11:02", classify.NetworkSwitch, store.DeviceAgentless},
		{"mac:00:1b:a9:3c:20:51", classify.Printer, store.DeviceDiscovered},
	}
	for _, tt := range tests {
		d := e.device(t, tt.id)
		if d.Type != string(tt.typ) || d.State != tt.state || d.StateBy != "controller" {
			t.Errorf("%s: %s/%s by %s, want %s/%s", tt.id, d.Type, d.State, d.StateBy, tt.typ,
				tt.state)
		}
	}
	srv := e.device(t, "mac:00:14:22:3a:5b:11")
	if !strings.Contains(srv.StateReason, "bootstrap is not available") {
		t.Errorf("auto-enrolled server without a bootstrapper: reason %q", srv.StateReason)
	}
	if ge := e.device(t, "mac:44:4b:5d:10:33:40"); ge.Vendor != "GE Healthcare" ||
		ge.Tier != 3 || len(ge.Controls) == 0 {
		t.Errorf("GE modality: %+v", ge)
	}

	got := strings.Join(e.rec.types(), "\n")
	if strings.Count(got, evidence.TypeDeviceClassified) != 4 {
		t.Errorf("evidence:\n%s\nwant four classifications", got)
	}

	// The same report again changes nothing and records nothing new.
	n := len(e.rec.types())
	e.ingest(t, linuxServer, geModality, ciscoSwitch, printer)
	if len(e.rec.types()) != n {
		t.Errorf("a repeated report recorded %d more entries", len(e.rec.types())-n)
	}
}

func TestMergeAcrossMethodsAndKeys(t *testing.T) {
	e := newEnv(t, nil)
	e.ingest(t, &wardv1.DiscoveredDevice{Addresses: []string{"10.0.0.11"},
		Methods: []string{"nmap"}, Services: []*wardv1.DiscoveredService{{Port: 22,
			Protocol: "tcp", Name: "ssh", Product: "OpenSSH"}}})
	if d := e.device(t, "ip:10.0.0.11"); d.MAC != "" {
		t.Fatalf("address-keyed device: %+v", d)
	}

	e.ingest(t, &wardv1.DiscoveredDevice{Mac: "00-14-22-3A-5B-11",
		Addresses: []string{"10.0.0.11"}, Methods: []string{"arp"}, Hostname: "files01"})
	d := e.device(t, "mac:00:14:22:3a:5b:11")
	if len(d.Methods) != 2 || len(d.Services) != 1 || d.Hostname != "files01" {
		t.Errorf("merged device: methods %v services %v hostname %q", d.Methods, d.Services,
			d.Hostname)
	}
	if _, err := e.st.GetDevice(context.Background(), "t1", "ip:10.0.0.11"); !errors.Is(err,
		store.ErrNotFound) {
		t.Errorf("address-keyed record kept: %v", err)
	}
}

// TestClinicalEvidenceRevokesAutoEnrollment: a device first seen as a server, then
// showing DICOM, must not stay approved for an agent.
func TestClinicalEvidenceRevokesAutoEnrollment(t *testing.T) {
	e := newEnv(t, nil)
	e.ingest(t, linuxServer)
	if d := e.device(t, "mac:00:14:22:3a:5b:11"); d.State != store.DeviceApproved {
		t.Fatalf("state %s", d.State)
	}
	withDICOM := proto.Clone(linuxServer).(*wardv1.DiscoveredDevice)
	withDICOM.Services = append(withDICOM.Services, &wardv1.DiscoveredService{Port: 11112,
		Protocol: "tcp", Name: "dicom", Extra: "dicom: DICOM Service Provider discovered!"})
	e.ingest(t, withDICOM)
	d := e.device(t, "mac:00:14:22:3a:5b:11")
	if d.Type != string(classify.DICOMModality) || d.State != store.DevicePendingApproval {
		t.Errorf("after DICOM: %s/%s", d.Type, d.State)
	}
}

func TestApproveBootstrapEnrollAndExclude(t *testing.T) {
	boot := &bootstraps{}
	e := newEnv(t, boot)
	ctx := context.Background()
	pacs := &wardv1.DiscoveredDevice{Mac: "00:25:90:6c:50:20", Addresses: []string{"10.0.0.20"},
		OsGuess: "Linux 5.0 - 5.14", Services: []*wardv1.DiscoveredService{
			{Port: 22, Protocol: "tcp", Name: "ssh", Product: "OpenSSH"},
			{Port: 8042, Protocol: "tcp", Name: "http", Extra: "Orthanc Explorer"},
			{Port: 4242, Protocol: "tcp", Name: "dicom",
				Extra: "dicom: DICOM Service Provider discovered!"}}}
	e.ingest(t, pacs, linuxServer)

	// The auto-enrolled server was handed to the bootstrapper at once; the PACS waits.
	if len(boot.reqs) != 1 || boot.reqs[0].Address != "10.0.0.11" ||
		boot.reqs[0].Collector != "c1" {
		t.Fatalf("bootstrap requests %+v", boot.reqs)
	}
	if d := e.device(t, "mac:00:14:22:3a:5b:11"); d.State != store.DeviceEnrolling {
		t.Errorf("server state %s", d.State)
	}

	// The request carries a one-time token usable only from the device's address.
	req := boot.reqs[0]
	if req.Token == "" || req.TokenID == "" || strings.Contains(req.Token, req.TokenID) {
		t.Fatalf("token %q id %q", req.Token, req.TokenID)
	}
	sum := sha256.Sum256([]byte(req.Token))
	now := time.Date(2026, 3, 5, 9, 5, 0, 0, time.UTC)
	if _, err := e.st.RedeemToken(ctx, sum[:], netip.MustParseAddr("10.0.0.12"),
		now); !errors.Is(err, store.ErrTokenRefused) {
		t.Errorf("token redeemed from another address: %v", err)
	}
	tok, err := e.st.RedeemToken(ctx, sum[:], netip.MustParseAddr("10.0.0.11"), now)
	if err != nil || tok.ID != req.TokenID || tok.Tenant != "t1" {
		t.Fatalf("redeem from the device: %+v %v", tok, err)
	}
	if _, err := e.st.RedeemToken(ctx, sum[:], netip.MustParseAddr("10.0.0.11"),
		now); !errors.Is(err, store.ErrTokenRefused) {
		t.Errorf("token redeemed twice: %v", err)
	}
	id := "mac:00:25:90:6c:50:20"
	if d := e.device(t, id); d.Type != string(classify.PACSServer) ||
		d.State != store.DevicePendingApproval {
		t.Fatalf("pacs %s/%s", d.Type, d.State)
	}

	d, err := e.inv.Approve(ctx, "t1", id, "alice")
	if err != nil || d.State != store.DeviceEnrolling || len(boot.reqs) != 2 {
		t.Fatalf("approve: %s %v (requests %d)", d.State, err, len(boot.reqs))
	}
	if _, err := e.inv.Approve(ctx, "t1", id, "alice"); !errors.Is(err, ErrState) {
		t.Errorf("second approval: %v", err)
	}

	obs := Observer{Inventory: e.inv}
	obs.Connected(ctx, "t1", "agent-pacs", nil, &wardv1.Hello{Host: &wardv1.HostFacts{
		Addresses: []string{"10.0.0.20/24"}}})
	if d := e.device(t, id); d.State != store.DeviceEnrolled || d.AgentID != "agent-pacs" {
		t.Errorf("after the agent connected: %s %q", d.State, d.AgentID)
	}

	if _, err := e.inv.Exclude(ctx, "t1", "mac:44:4b:5d:10:33:40", "bob", "x"); !errors.Is(err,
		store.ErrNotFound) {
		t.Errorf("exclude unknown: %v", err)
	}
	e.ingest(t, printer)
	if d, err := e.inv.Exclude(ctx, "t1", "mac:00:1b:a9:3c:20:51", "bob",
		"owned by the landlord"); err != nil || d.State != store.DeviceExcluded {
		t.Fatalf("exclude: %v %v", d.State, err)
	}
	e.ingest(t, printer)
	if d := e.device(t, "mac:00:1b:a9:3c:20:51"); d.State != store.DeviceExcluded ||
		d.StateBy != "bob" {
		t.Errorf("exclusion did not survive a new report: %s by %s", d.State, d.StateBy)
	}

	got := strings.Join(e.rec.types(), "\n")
	for _, want := range []string{TypeDeviceApproved + " " + id, TypeDeviceEnrolled + " " + id,
		TypeDeviceExcluded + " mac:00:1b:a9:3c:20:51"} {
		if !strings.Contains(got, want) {
			t.Errorf("evidence lacks %q:\n%s", want, got)
		}
	}
}

func TestBootstrapFailureAndSiteExclusion(t *testing.T) {
	e := newEnv(t, &bootstraps{err: errors.New("collector offline")})
	ctx := context.Background()
	if err := e.st.PutSiteConfig(ctx, "t1", store.SiteConfig{Config: site.Config{
		Subnets: []string{"10.0.0.0/24"}, Exclude: []string{"10.0.0.2"}}}); err != nil {
		t.Fatal(err)
	}
	e.ingest(t, linuxServer, ciscoSwitch)
	if d := e.device(t, "mac:00:14:22:3a:5b:11"); d.State != store.DeviceFailed ||
		!strings.Contains(d.StateReason, "bootstrap failed at request: collector offline") {
		t.Errorf("server: %s %q", d.State, d.StateReason)
	}
	inc, err := e.st.UnresolvedIncident(ctx, "t1", "c1", BootstrapCheck("mac:00:14:22:3a:5b:11"))
	if err != nil || inc.Kind != IncidentKindBootstrap ||
		!strings.Contains(inc.Observed, "collector offline") {
		t.Errorf("bootstrap incident %+v, %v", inc, err)
	}

	// A failure reported by the collector later names its step; the incident stays one.
	if err := e.inv.BootstrapFailed(ctx, "t1", "mac:00:14:22:3a:5b:11", "host key",
		"the host key does not match known_hosts"); err != nil {
		t.Fatal(err)
	}
	d := e.device(t, "mac:00:14:22:3a:5b:11")
	if !strings.Contains(d.StateReason, "at host key") {
		t.Errorf("state reason %q", d.StateReason)
	}
	incs, _ := e.st.ListIncidents(ctx, "t1", store.IncidentFilter{Unresolved: true})
	if len(incs) != 1 {
		t.Errorf("%d incidents, want 1", len(incs))
	}
	if d := e.device(t, "mac:00:00:0c:9a:11:02"); d.State != store.DeviceExcluded {
		t.Errorf("excluded address: %s", d.State)
	}
}

// TestObserverReadsStoredReportsOnce: reports committed while the inventory was not
// listening are read when the collector connects, in order, and only once.
func TestObserverReadsStoredReportsOnce(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	commit := func(seq uint64, body *wardv1.ConnectRequest) {
		body.Seq = seq
		raw, err := proto.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.CommitMessage(ctx, store.Message{Tenant: "t1", Agent: "c1",
			Seq: seq, Type: "x", Body: raw}); err != nil {
			t.Fatal(err)
		}
	}
	report := func(d *wardv1.DiscoveredDevice, done bool) *wardv1.ConnectRequest {
		return &wardv1.ConnectRequest{Body: &wardv1.ConnectRequest_DiscoveryReport{
			DiscoveryReport: &wardv1.DiscoveryReport{ScanId: "s9", Complete: done,
				Devices: []*wardv1.DiscoveredDevice{d}}}}
	}
	commit(1, report(linuxServer, false))
	commit(2, &wardv1.ConnectRequest{Body: &wardv1.ConnectRequest_Heartbeat{
		Heartbeat: &wardv1.Heartbeat{}}})
	commit(3, report(ciscoSwitch, true))

	obs := Observer{Inventory: e.inv}
	hello := &wardv1.Hello{Host: &wardv1.HostFacts{Roles: []string{"collector"}}}
	obs.Connected(ctx, "t1", "c1", []string{"collector"}, hello)
	obs.Connected(ctx, "t1", "c1", []string{"collector"}, hello)

	if n, _ := e.st.CountDevices(ctx, "t1"); n != 2 {
		t.Errorf("%d devices, want 2", n)
	}
	if seq, _ := e.st.DiscoveryCursor(ctx, "t1", "c1"); seq != 3 {
		t.Errorf("cursor %d, want 3", seq)
	}
	got := strings.Join(e.rec.types(), "\n")
	if strings.Count(got, evidence.TypeDiscoveryCompleted) != 1 ||
		strings.Count(got, evidence.TypeDeviceClassified) != 2 {
		t.Errorf("evidence after two connects:\n%s", got)
	}

	// A live report right after the cursor is ingested directly; one after a gap makes
	// the observer read the gap from the store first.
	commit(4, report(printer, false))
	m := report(printer, false)
	m.Seq = 4
	obs.Committed(ctx, "t1", "c1", m)
	if seq, _ := e.st.DiscoveryCursor(ctx, "t1", "c1"); seq != 4 {
		t.Errorf("cursor after a live report %d, want 4", seq)
	}
	commit(5, report(geModality, false))
	commit(6, report(linuxServer, false))
	m = report(linuxServer, false)
	m.Seq = 6
	obs.Committed(ctx, "t1", "c1", m)
	if seq, _ := e.st.DiscoveryCursor(ctx, "t1", "c1"); seq != 6 {
		t.Errorf("cursor after a gap %d, want 6", seq)
	}
	if n, _ := e.st.CountDevices(ctx, "t1"); n != 4 {
		t.Errorf("%d devices after the gap was read, want 4", n)
	}
}

// TestCorpusThroughTheInventory ingests every host of the classifier's labelled corpus as
// a collector would report it and checks that no clinical host ends up approved for an
// automatic agent or polled, and how many keep their labelled type.
func TestCorpusThroughTheInventory(t *testing.T) {
	e := newEnv(t, nil)
	labels := readLabels(t)
	right, total := 0, 0
	for file, want := range labels {
		hosts, err := nmapxml.ParseFile("../../../pkg/classify/testdata/nmap/" + file)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hosts {
			dev := reported(h)
			e.ingest(t, dev)
			d := e.device(t, DeviceID(dev.GetMac(), dev.GetAddresses()))
			label := want[h.IP]
			total++
			if d.Type == string(label) {
				right++
			}
			if label.Clinical() && (d.State != store.DevicePendingApproval ||
				classify.Type(d.Type).ActivelyTouched()) {
				t.Errorf("%s %s (%s): %s/%s", file, h.IP, label, d.Type, d.State)
			}
		}
	}
	t.Logf("%d/%d corpus hosts keep their labelled type through the inventory", right, total)
	if right*100 < total*85 {
		t.Errorf("only %d/%d typed as labelled", right, total)
	}
}

// reported turns a parsed nmap host into the DiscoveredDevice a collector sends: script
// output goes to Extra, the OS guess and SNMP description to their fields.
func reported(h classify.Host) *wardv1.DiscoveredDevice {
	d := &wardv1.DiscoveredDevice{Mac: h.MAC, Addresses: []string{h.IP}, Vendor: h.Vendor,
		Hostname: h.Hostname, Description: h.SysDescr, Methods: []string{"nmap"}}
	if len(h.OS) > 0 {
		d.OsGuess = h.OS[0].Name
	}
	for _, s := range h.Services {
		var extra []string
		if s.ExtraInfo != "" {
			extra = append(extra, s.ExtraInfo)
		}
		for _, sc := range s.Scripts {
			extra = append(extra, sc.Output)
		}
		d.Services = append(d.Services, &wardv1.DiscoveredService{Port: uint32(s.Port),
			Protocol: s.Protocol, Name: s.Name, Product: s.Product, Version: s.Version,
			Extra: strings.Join(extra, "\n")})
	}
	for _, sc := range h.Scripts {
		if d.Attributes == nil {
			d.Attributes = map[string]string{}
		}
		d.Attributes[sc.ID] = sc.Output
	}
	return d
}

func readLabels(t *testing.T) map[string]map[string]classify.Type {
	f, err := os.Open("../../../pkg/classify/testdata/labels.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string]classify.Type{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), "\t")
		if len(parts) != 3 || strings.HasPrefix(parts[0], "#") {
			continue
		}
		if out[parts[0]] == nil {
			out[parts[0]] = map[string]classify.Type{}
		}
		out[parts[0]][parts[1]] = classify.Type(parts[2])
	}
	return out
}

// TestTestNetworkClinic feeds the inventory what the collector reports about the
// namespace clinic of agent/internal/discovery/netlab (random MACs, Linux fingerprints
// for every namespace, SNMP attributes as the collector names them) and checks types
// and states, including the passive-only subnet rule.
func TestTestNetworkClinic(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if err := e.st.PutSiteConfig(ctx, "t1", store.SiteConfig{Config: site.Config{
		Subnets: []string{"10.77.1.0/24"}, PassiveSubnets: []string{"10.77.2.0/24"},
		Exclude: []string{"10.77.1.99"}}}); err != nil {
		t.Fatal(err)
	}
	linux := "Linux 4.15 - 5.19"
	dev := func(mac, addr string, svcs ...*wardv1.DiscoveredService) *wardv1.DiscoveredDevice {
		return &wardv1.DiscoveredDevice{Mac: mac, Addresses: []string{addr}, OsGuess: linux,
			Methods: []string{"nmap", "arp"}, Services: svcs}
	}
	sw := dev("7a:11:00:00:00:10", "10.77.1.10", &wardv1.DiscoveredService{Port: 161,
		Protocol: "udp", Name: "snmp"})
	sw.Description = "Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), " +
		"Version 15.2(7)E4, RELEASE SOFTWARE (fc2)"
	sw.Attributes = map[string]string{"sys_object_id": ".1.3.6.1.4.1.9.1.1208",
		"credential": "snmp v3 user=wardpoll authPriv auth=SHA priv=AES"}
	quiet := &wardv1.DiscoveredDevice{Mac: "7a:11:00:00:00:0b", Addresses: []string{"10.77.2.10"},
		Methods: []string{"arp"}}
	lanServer := dev("7a:11:00:00:00:21", "10.77.2.21", &wardv1.DiscoveredService{Port: 22,
		Protocol: "tcp", Name: "ssh", Product: "OpenSSH", Version: "9.2p1 Debian 2+deb12u3"})
	e.ingest(t,
		sw,
		dev("7a:11:00:00:00:20", "10.77.1.20", &wardv1.DiscoveredService{Port: 22,
			Protocol: "tcp", Name: "ssh", Product: "OpenSSH", Version: "9.2p1 Debian 2+deb12u3",
			Extra: "protocol 2.0"}),
		dev("7a:11:00:00:00:30", "10.77.1.30", &wardv1.DiscoveredService{Port: 104,
			Protocol: "tcp", Name: "dicom",
			Extra: "dicom: DICOM Service Provider discovered!\nconfig: Any AET is accepted"}),
		dev("7a:11:00:00:00:40", "10.77.1.40", &wardv1.DiscoveredService{Port: 80,
			Protocol: "tcp", Name: "http", Product: "Apache httpd", Version: "2.4.57",
			Extra: "OpenEMR Login"}),
		dev("7a:11:00:00:00:50", "10.77.1.50", &wardv1.DiscoveredService{Port: 2575,
			Protocol: "tcp", Name: "hl7"}),
		quiet, lanServer,
	)

	tests := []struct {
		addr  string
		typ   classify.Type
		state store.DeviceState
	}{
		{"10.77.1.10", classify.NetworkSwitch, store.DeviceAgentless},
		{"10.77.1.20", classify.LinuxServer, store.DeviceApproved},
		{"10.77.1.30", classify.DICOMModality, store.DevicePendingApproval},
		{"10.77.1.40", classify.EHRServer, store.DevicePendingApproval},
		{"10.77.1.50", classify.HL7InterfaceEngine, store.DevicePendingApproval},
		{"10.77.2.10", classify.Unknown, store.DeviceDiscovered},
		{"10.77.2.21", classify.LinuxServer, store.DevicePendingApproval},
	}
	all, err := e.st.ListDevices(ctx, "t1", store.DeviceFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		var d *store.Device
		for i := range all {
			if all[i].Addresses[0] == tt.addr {
				d = &all[i]
			}
		}
		if d == nil {
			t.Errorf("%s: no device", tt.addr)
			continue
		}
		if d.Type != string(tt.typ) || d.State != tt.state {
			t.Errorf("%s: %s/%s (%s), want %s/%s; reasons %v", tt.addr, d.Type, d.State,
				d.StateReason, tt.typ, tt.state, d.Reasons)
		}
	}
}

// TestSysObjectIDAttribute: the collector's "sys_object_id" attribute reaches the
// classifier.
func TestSysObjectIDAttribute(t *testing.T) {
	e := newEnv(t, nil)
	e.ingest(t, &wardv1.DiscoveredDevice{Mac: "7a:11:00:00:00:01", Addresses: []string{"10.0.0.1"},
		Attributes: map[string]string{"sys_object_id": ".1.3.6.1.4.1.12356.101.1.1"}})
	d := e.device(t, "mac:7a:11:00:00:00:01")
	if d.Type != string(classify.Firewall) || !strings.Contains(strings.Join(d.Reasons, ";"),
		"1.3.6.1.4.1.12356.101.1.1 belongs to Fortinet") {
		t.Errorf("%s: %v", d.Type, d.Reasons)
	}
}

// TestBootstrapOnlyThroughAnAllowedCollector sends no bootstrap command, and mints no
// token, through an agent that reported a device but may not take the collector role
// now: enrolled before roles were stored (host-only), narrowed to host, or revoked.
// Its bootstrap tokens are host-only when it may.
func TestBootstrapOnlyThroughAnAllowedCollector(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*store.Agent)
		want   store.DeviceState
	}{
		{"collector", func(*store.Agent) {}, store.DeviceEnrolling},
		{"no stored roles", func(a *store.Agent) { a.Roles = nil }, store.DeviceFailed},
		{"host only", func(a *store.Agent) { a.Roles = []string{"host"} }, store.DeviceFailed},
		{"revoked", func(a *store.Agent) { a.Revoked = true }, store.DeviceFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			boot := &bootstraps{}
			e := newEnv(t, boot)
			ctx := context.Background()
			if _, err := e.st.UpdateAgent(ctx, "c1", func(a *store.Agent) error {
				tt.mutate(a)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			e.ingest(t, linuxServer) // auto-approved for an agent

			d := e.device(t, "mac:00:14:22:3a:5b:11")
			if d.State != tt.want {
				t.Fatalf("device %s (%s), want %s", d.State, d.StateReason, tt.want)
			}
			toks, err := e.st.ListTokens(ctx, "t1")
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == store.DeviceFailed {
				if len(boot.reqs) != 0 || len(toks) != 0 {
					t.Errorf("%d bootstrap requests, %d tokens; want none", len(boot.reqs),
						len(toks))
				}
				return
			}
			if len(boot.reqs) != 1 || len(toks) != 1 ||
				!slices.Equal(toks[0].Roles, []string{"host"}) {
				t.Errorf("bootstrap requests %+v, tokens %+v; want one, host-only", boot.reqs,
					toks)
			}
		})
	}
}
