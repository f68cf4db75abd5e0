package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/inventory"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/site"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// The clinic of the poll tests: a Cisco switch (agentless, polled over SNMP) and a
// server the site excludes.
const (
	switchID   = "mac:00:00:0c:9a:11:02"
	switchAddr = "10.20.0.2"
	exclAddr   = "10.20.0.7"
	exclID     = "ip:" + exclAddr
)

// agentStream is a Connect stream of a test agent.
type agentStream struct {
	t *testing.T
	s wardv1.AgentService_ConnectClient
}

// connectAs opens a Connect stream whose Hello lists roles and waits for the Welcome.
func (e *env) connectAs(a enrolled, roles ...string) *agentStream {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := wardv1.NewAgentServiceClient(e.dial(a.cert)).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&wardv1.ConnectRequest{Body: &wardv1.ConnectRequest_Hello{
		Hello: &wardv1.Hello{Host: &wardv1.HostFacts{Hostname: "col-01",
			Roles: roles}}}}); err != nil {
		t.Fatal(err)
	}
	m, err := recvTimeout(s)
	if err != nil || m.GetWelcome().GetAgentId() != a.id {
		t.Fatalf("welcome = %v, %v", m, err)
	}
	return &agentStream{t: t, s: s}
}

// next returns the next message that is not a site configuration or a checkpoint to
// witness (collectors witness their tenant's evidence log).
func (as *agentStream) next() (*wardv1.ConnectResponse, error) {
	for {
		m, err := recvTimeout(as.s)
		if err != nil || m.GetSiteConfig() == nil && m.GetCheckpoint() == nil {
			return m, err
		}
	}
}

// sendAck sends m and expects an ack of its seq.
func (as *agentStream) sendAck(m *wardv1.ConnectRequest) {
	as.t.Helper()
	if err := as.s.Send(m); err != nil {
		as.t.Fatal(err)
	}
	got, err := as.next()
	if err != nil || got.GetAck().GetUpToSeq() != m.GetSeq() {
		as.t.Fatalf("seq %d: got %v, %v; want its ack", m.GetSeq(), got, err)
	}
}

// sendRefused sends m and expects the stream to end with code.
func (as *agentStream) sendRefused(m *wardv1.ConnectRequest, code codes.Code) {
	as.t.Helper()
	if err := as.s.Send(m); err != nil {
		as.t.Fatal(err)
	}
	got, err := as.next()
	if status.Code(err) != code {
		as.t.Fatalf("got %v, %v; want %s", got, err, code)
	}
}

// siteConfig waits for the next site configuration and returns it.
func (as *agentStream) siteConfig() *site.Config {
	as.t.Helper()
	for {
		m, err := recvTimeout(as.s)
		if err != nil {
			as.t.Fatalf("waiting for a site configuration: %v", err)
		}
		if sp := m.GetSiteConfig(); sp != nil {
			var u wardv1.SiteConfigUpdate
			if err := proto.Unmarshal(sp.GetPayload(), &u); err != nil {
				as.t.Fatal(err)
			}
			c, err := site.Parse(u.GetConfigJson())
			if err != nil {
				as.t.Fatal(err)
			}
			return c
		}
	}
}

func pollReport(seq uint64, tenant string, polls ...*wardv1.DevicePoll) *wardv1.ConnectRequest {
	return &wardv1.ConnectRequest{Seq: seq, Body: &wardv1.ConnectRequest_DevicePollReport{
		DevicePollReport: &wardv1.DevicePollReport{Tenant: tenant, Polls: polls}}}
}

// answered is a poll the device answered, with one interface.
func answered(id, addr string, at time.Time, uptime, inErrors uint64) *wardv1.DevicePoll {
	return &wardv1.DevicePoll{DeviceId: id, Address: addr, Reachable: true,
		PolledAt: timestamppb.New(at), UptimeCentiseconds: uptime, SysName: "sw-frontdesk",
		Interfaces: []*wardv1.InterfaceCounters{{Index: 1, Name: "Gi0/1", OperStatus: 1,
			InErrors: inErrors}}}
}

func unanswered(id, addr string, at time.Time) *wardv1.DevicePoll {
	return &wardv1.DevicePoll{DeviceId: id, Address: addr, PolledAt: timestamppb.New(at),
		Error: "no answer with any credential"}
}

// pollEnv is a controller with clinic-a's site configuration, a collector of clinic-a
// connected and the switch discovered by it.
type pollEnv struct {
	*env
	col    enrolled
	stream *agentStream
	seq    uint64
}

func newPollEnv(t *testing.T) *pollEnv {
	e := newEnv(t, nil)
	col := e.enrollAs("clinic-a", "collector")
	inv := wardv1.NewInventoryServiceClient(e.dial(e.admin))
	_, err := inv.SetSiteConfig(ctxT(t), &wardv1.SetSiteConfigRequest{Tenant: "clinic-a",
		Config: &wardv1.SiteConfig{Subnets: []string{"10.20.0.0/24"},
			Excluded: []string{exclAddr},
			Snmp:     []*wardv1.SNMPCredential{{Version: "v2c", Community: "clinic-ro"}}}})
	if err != nil {
		t.Fatal(err)
	}
	p := &pollEnv{env: e, col: col, stream: e.connectAs(col, "host", "collector")}
	if c := p.stream.siteConfig(); len(c.Poll.Targets) != 0 {
		t.Fatalf("poll targets before any discovery: %v", c.Poll.Targets)
	}

	p.seq++
	p.stream.sendAck(&wardv1.ConnectRequest{Seq: p.seq,
		Body: &wardv1.ConnectRequest_DiscoveryReport{DiscoveryReport: &wardv1.DiscoveryReport{
			ScanId: "scan-1", Subnet: "10.20.0.0/24", HostsDone: 254, Complete: true,
			Devices: []*wardv1.DiscoveredDevice{
				{Mac: "00:00:0c:9a:11:02", Addresses: []string{switchAddr},
					Methods: []string{"snmp"}, Description: "Cisco IOS Software, C2960X " +
						"Software (C2960X-UNIVERSALK9-M), Version 15.2"},
				{Addresses: []string{exclAddr}, Methods: []string{"snmp"},
					Description: "Cisco IOS Software, C2960X Software"},
			}}}})
	c := p.stream.siteConfig()
	want := []site.PollTarget{{Device: switchID, Address: switchAddr}}
	if len(c.Poll.Targets) != 1 || c.Poll.Targets[0] != want[0] {
		t.Fatalf("poll targets = %v, want %v (never the excluded device)", c.Poll.Targets,
			want)
	}
	return p
}

// poll sends one report of polls on the collector's stream and waits for its ack.
func (p *pollEnv) poll(polls ...*wardv1.DevicePoll) {
	p.t.Helper()
	p.seq++
	p.stream.sendAck(pollReport(p.seq, "clinic-a", polls...))
}

func (p *pollEnv) device(id string) *wardv1.Device {
	p.t.Helper()
	inv := wardv1.NewInventoryServiceClient(p.dial(p.admin))
	resp, err := inv.GetDevice(ctxT(p.t), &wardv1.GetDeviceRequest{Tenant: "clinic-a",
		Id: id})
	if err != nil {
		p.t.Fatalf("GetDevice %s: %v", id, err)
	}
	return resp.GetDevice()
}

func (p *pollEnv) deviceDownIncidents() []*wardv1.Incident {
	p.t.Helper()
	resp, err := wardv1.NewRemediationServiceClient(p.dial(p.admin)).ListIncidents(
		ctxT(p.t), &wardv1.ListIncidentsRequest{Tenant: "clinic-a"})
	if err != nil {
		p.t.Fatal(err)
	}
	var out []*wardv1.Incident
	for _, inc := range resp.GetIncidents() {
		if inc.GetKind() == store.IncidentKindDeviceDown {
			out = append(out, inc)
		}
	}
	return out
}

func (p *pollEnv) records(types ...string) []*wardv1.EvidenceRecord {
	p.t.Helper()
	resp, err := wardv1.NewEvidenceServiceClient(p.dial(p.admin)).ListRecords(ctxT(p.t),
		&wardv1.ListRecordsRequest{Tenant: "clinic-a", Types: types})
	if err != nil {
		p.t.Fatal(err)
	}
	return resp.GetRecords()
}

// TestDevicePollsHealthAndIncidents follows the switch through answered polls (its
// health, an error counter that wraps, an uptime reset), three unanswered ones (one
// device-down incident, recorded before the ack, not opened twice) and an answer again
// (the incident resolved).
func TestDevicePollsHealthAndIncidents(t *testing.T) {
	p := newPollEnv(t)
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	tick := func() time.Time { at = at.Add(time.Minute); return at }

	p.poll(answered(switchID, switchAddr, tick(), 100_000, 4_294_967_290))
	h := p.device(switchID).GetHealth()
	switch {
	case !h.GetReachable() || h.GetUptimeSeconds() != 1000 || h.GetConsecutiveFailures() != 0:
		t.Fatalf("health after an answer = %v", h)
	case len(h.GetInterfaces()) != 1 || h.GetInterfaces()[0].GetStatus() != "up" ||
		h.GetInterfaces()[0].GetNewErrors() != 0 || !h.GetLastPoll().AsTime().Equal(at):
		t.Fatalf("interfaces after the first answer = %v", h.GetInterfaces())
	}

	// ifInErrors wrapped past 2^32: 6 to the wrap and 4 after it.
	p.poll(answered(switchID, switchAddr, tick(), 106_000, 4))
	if got := p.device(switchID).GetHealth().GetInterfaces()[0].GetNewErrors(); got != 10 {
		t.Errorf("new errors across the wrap = %d, want 10", got)
	}
	if recs := p.records(inventory.TypeDeviceInterfaceErrors); len(recs) != 1 ||
		recs[0].GetSubject() != switchID || !strings.Contains(recs[0].GetDataJson(), `10`) {
		t.Errorf("interface error records = %v", recs)
	}

	restartAt := tick()
	p.poll(answered(switchID, switchAddr, restartAt, 3000, 4))
	h = p.device(switchID).GetHealth()
	if !h.GetLastRestart().AsTime().Equal(restartAt.Add(-30*time.Second)) ||
		h.GetUptimeSeconds() != 30 {
		t.Errorf("after the uptime reset: last restart %v, uptime %d",
			h.GetLastRestart().AsTime(), h.GetUptimeSeconds())
	}
	if recs := p.records(inventory.TypeDeviceRestarted); len(recs) != 1 ||
		recs[0].GetSubject() != switchID || recs[0].GetActorId() != p.col.id {
		t.Errorf("restart records = %v", recs)
	}

	p.poll(unanswered(switchID, switchAddr, tick()))
	downSince := at
	p.poll(unanswered(switchID, switchAddr, tick()))
	if got := p.deviceDownIncidents(); len(got) != 0 {
		t.Fatalf("incident after two missed polls: %v", got)
	}
	p.poll(unanswered(switchID, switchAddr, tick()))
	incs := p.deviceDownIncidents()
	if len(incs) != 1 || incs[0].GetCheck() != store.DeviceDownCheck(switchID) ||
		incs[0].GetAgent() != p.col.id || incs[0].GetState() == "resolved" {
		t.Fatalf("incidents after three missed polls = %v", incs)
	}
	h = p.device(switchID).GetHealth()
	switch {
	case h.GetReachable() || h.GetConsecutiveFailures() != 3 ||
		!h.GetSince().AsTime().Equal(downSince) || h.GetIncident() != incs[0].GetId():
		t.Errorf("health when down = %v", h)
	case h.GetError() == "" || h.GetUptimeSeconds() != 30:
		t.Errorf("health when down keeps the last uptime and says why: %v", h)
	}
	if recs := p.records("incident.opened"); len(recs) != 1 ||
		recs[0].GetSubject() != incs[0].GetId() {
		t.Errorf("incident.opened records before the ack = %v", recs)
	}

	p.poll(unanswered(switchID, switchAddr, tick()))
	if got := p.deviceDownIncidents(); len(got) != 1 {
		t.Errorf("a fourth missed poll opened another incident: %v", got)
	}

	p.poll(answered(switchID, switchAddr, tick(), 9000, 4))
	incs = p.deviceDownIncidents()
	if len(incs) != 1 || incs[0].GetState() != "resolved" {
		t.Fatalf("incidents after an answer = %v, want the one resolved", incs)
	}
	if h := p.device(switchID).GetHealth(); !h.GetReachable() || h.GetIncident() != "" ||
		h.GetConsecutiveFailures() != 0 || !h.GetSince().AsTime().Equal(at) {
		t.Errorf("health when up again = %v", h)
	}
	if recs := p.records("incident.resolved"); len(recs) != 1 {
		t.Errorf("incident.resolved records = %v", recs)
	}
}

// TestDevicePollsIgnoredOrRefused sends polls from every wrong place: devices not given
// to the collector are ignored (acknowledged, counted, nothing changes); a report naming
// another tenant, from an agent that is not a collector, or malformed, is refused and not
// stored.
func TestDevicePollsIgnoredOrRefused(t *testing.T) {
	p := newPollEnv(t)
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)

	// Not given to poll: the excluded device, an unknown one, the switch at another
	// address.
	p.poll(unanswered(exclID, exclAddr, at), unanswered("ip:10.20.0.99", "10.20.0.99", at),
		unanswered(switchID, "10.20.0.3", at))
	if h := p.device(switchID).GetHealth(); h != nil {
		t.Errorf("switch health from a poll at another address: %v", h)
	}
	if h := p.device(exclID).GetHealth(); h != nil {
		t.Errorf("health of the excluded device: %v", h)
	}
	if !strings.Contains(p.logs.String(), "device polls ignored") {
		t.Error("ignored polls were not logged")
	}
	if _, body := p.httpGet("/metrics"); !strings.Contains(body,
		"ward_device_polls_ignored_total 3") {
		t.Error("ignored polls were not counted")
	}

	// The collector of another tenant polls clinic-a's switch, as its own tenant: its
	// tenant has no such device to give it.
	other := p.enrollAs("clinic-b", "collector")
	os := p.connectAs(other, "collector")
	os.sendAck(pollReport(1, "clinic-b", unanswered(switchID, switchAddr, at)))
	if h := p.device(switchID).GetHealth(); h != nil {
		t.Errorf("switch health from another tenant's collector: %v", h)
	}
	// ... and naming clinic-a.
	os = p.connectAs(other, "collector")
	os.sendRefused(pollReport(2, "clinic-a", unanswered(switchID, switchAddr, at)),
		codes.PermissionDenied)

	host := p.enroll("clinic-a")
	p.connectAs(host, "host").sendRefused(pollReport(1, "clinic-a",
		unanswered(switchID, switchAddr, at)), codes.PermissionDenied)
	p.stream.sendRefused(pollReport(p.seq+1, "clinic-b",
		unanswered(switchID, switchAddr, at)), codes.PermissionDenied)

	many := func(n int) []*wardv1.DevicePoll {
		out := make([]*wardv1.DevicePoll, n)
		for i := range out {
			out[i] = unanswered("ip:10.20.1."+string(rune('a'+i%26)), "10.20.1.1", at)
			out[i].DeviceId = out[i].DeviceId + strings.Repeat("x", i/26)
		}
		return out
	}
	ifaces := answered(switchID, switchAddr, at, 100, 0)
	for i := 2; i <= 513; i++ {
		ifaces.Interfaces = append(ifaces.Interfaces, &wardv1.InterfaceCounters{
			Index: uint32(i)})
	}
	noTime := unanswered(switchID, switchAddr, at)
	noTime.PolledAt = nil
	badStatus := answered(switchID, switchAddr, at, 100, 0)
	badStatus.Interfaces[0].OperStatus = 9
	tests := []struct {
		name  string
		polls []*wardv1.DevicePoll
	}{
		{"no device id", []*wardv1.DevicePoll{unanswered("", switchAddr, at)}},
		{"address not an IP", []*wardv1.DevicePoll{unanswered(switchID, "switch", at)}},
		{"no poll time", []*wardv1.DevicePoll{noTime}},
		{"device polled twice", []*wardv1.DevicePoll{unanswered(switchID, switchAddr, at),
			unanswered(switchID, switchAddr, at.Add(time.Second))}},
		{"513 interfaces", []*wardv1.DevicePoll{ifaces}},
		{"oper status 9", []*wardv1.DevicePoll{badStatus}},
		{"id too long", []*wardv1.DevicePoll{unanswered(strings.Repeat("i", 129),
			switchAddr, at)}},
		{"4097 polls", many(4097)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := p.connectAs(p.col, "collector")
			s.sendRefused(pollReport(p.seq+1, "clinic-a", tt.polls...),
				codes.InvalidArgument)
		})
	}

	for _, id := range []string{p.col.id, host.id} {
		want := uint64(0)
		if id == p.col.id {
			want = p.seq
		}
		if got := p.getAgent(id).GetAckedSeq(); got != want {
			t.Errorf("agent %s: acked seq %d, want %d: a refused report was stored", id,
				got, want)
		}
	}
	if got := p.getAgent(other.id).GetAckedSeq(); got != 1 {
		t.Errorf("other tenant's collector: acked seq %d, want 1", got)
	}
	if h := p.device(switchID).GetHealth(); h != nil {
		t.Errorf("switch health after refused reports: %v", h)
	}
}
