package discovery

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wardsec/ward/agent/internal/discovery/netlab"
	"github.com/wardsec/ward/agent/internal/logtest"
	"github.com/wardsec/ward/pkg/site"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// pollSink keeps the messages a poll round enqueues.
type pollSink struct {
	mu   sync.Mutex
	msgs []*wardv1.ConnectRequest
}

func (s *pollSink) Enqueue(req *wardv1.ConnectRequest) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, req)
	return uint64(len(s.msgs)), nil
}

// outsideAddr lies in no subnet of the site.
const outsideAddr = "10.77.3.5"

// TestPollRoundClinic runs a poll round inside the collector's namespace while captures
// watch the excluded host's link and the passive-only subnet: no SNMP request may reach
// either.
func TestPollRoundClinic(t *testing.T) {
	c := netlab.NewClinic(t)
	excluded := c.StartCapture(c.ExcludedLink)
	passive := c.StartCapture(c.PassiveBridge)
	c.RunInside(c.Collector, "TestPollRoundInside")

	for _, p := range excluded.Stop() {
		if p.DstIP == netlab.ExcludedAddr {
			t.Errorf("the poll round reached the excluded device: %s", p)
		}
	}
	for _, p := range passive.Stop() {
		if p.SrcIP == netlab.CollectorAddrP || p.SrcIP == netlab.CollectorAddr ||
			p.DstIP == netlab.QuietAddr && p.SrcMAC == c.MACs[c.Collector] {
			t.Errorf("the poll round sent a frame on the passive-only subnet: %s", p)
		}
	}
}

// TestPollRoundInside runs inside the collector's namespace (see TestPollRoundClinic).
func TestPollRoundInside(t *testing.T) {
	if !netlab.Inside() {
		t.Skip("runs inside the namespace clinic only")
	}
	st := &site.Config{Subnets: []string{netlab.ScannedSubnet},
		PassiveSubnets: []string{netlab.PassiveSubnet}, Exclude: []string{netlab.ExcludedAddr},
		SNMP: []site.SNMPCredential{{Version: site.SNMPv3, User: netlab.SNMPUser,
			AuthProtocol: "SHA", AuthPassphrase: netlab.SNMPAuthPass, PrivProtocol: "AES",
			PrivPassphrase: netlab.SNMPPrivPass}},
		Poll: site.Poll{Interval: site.Duration(site.MinPollInterval), Targets: []site.PollTarget{
			{Device: "mac:02:00:00:00:00:10", Address: netlab.SwitchAddr},
			{Device: "ip:" + netlab.ServerAddr, Address: netlab.ServerAddr},
			{Device: "ip:" + netlab.ExcludedAddr, Address: netlab.ExcludedAddr},
			{Device: "ip:" + netlab.QuietAddr, Address: netlab.QuietAddr},
			{Device: "ip:" + outsideAddr, Address: outsideAddr},
		}}}
	st.Normalize()
	if err := st.Validate(); err != nil {
		t.Fatal(err)
	}
	sink := &pollSink{}
	col, err := New(Config{SitePath: "unused", Sink: sink, Log: logtest.New(t),
		Tenant: "clinic-a", PollTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := col.PollRound(ctx, st)
	if err != nil {
		t.Fatal(err)
	}

	if len(sink.msgs) != 1 || sink.msgs[0].GetDevicePollReport() != r {
		t.Fatalf("enqueued %d messages, want the one report", len(sink.msgs))
	}
	if r.GetTenant() != "clinic-a" || len(r.GetPolls()) != 2 {
		t.Fatalf("report = %v, want clinic-a's polls of the switch and the server", r)
	}
	sw, srv := r.GetPolls()[0], r.GetPolls()[1]
	switch {
	case sw.GetDeviceId() != "mac:02:00:00:00:00:10" || !sw.GetReachable():
		t.Errorf("switch poll = %v, want reachable", sw)
	case sw.GetUptimeCentiseconds() == 0 || sw.GetSysName() != netlab.SwitchName ||
		len(sw.GetInterfaces()) != 2 || sw.GetPolledAt() == nil:
		t.Errorf("switch poll = %v, want uptime, sysName, two interfaces, a time", sw)
	}
	switch {
	case srv.GetDeviceId() != "ip:"+netlab.ServerAddr || srv.GetReachable():
		t.Errorf("server poll = %v, want unreachable", srv)
	case srv.GetError() == "" || srv.GetUptimeCentiseconds() != 0:
		t.Errorf("server poll = %v, want an error and no uptime", srv)
	}
}

func TestPollRoundNothingToPoll(t *testing.T) {
	tests := []struct {
		name    string
		targets []site.PollTarget
		snmp    []site.SNMPCredential
	}{
		{"no targets", nil, []site.SNMPCredential{{Version: site.SNMPv2c, Community: "c"}}},
		{"only untouchable targets", []site.PollTarget{
			{Device: "ip:10.1.0.9", Address: "10.1.0.9"},
			{Device: "ip:10.2.0.9", Address: "10.2.0.9"},
			{Device: "ip:10.9.0.9", Address: "10.9.0.9"},
		}, []site.SNMPCredential{{Version: site.SNMPv2c, Community: "c"}}},
		{"no credentials", []site.PollTarget{{Device: "ip:10.1.0.5", Address: "10.1.0.5"}},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &site.Config{Subnets: []string{"10.1.0.0/24"},
				PassiveSubnets: []string{"10.2.0.0/24"}, Exclude: []string{"10.1.0.9"},
				SNMP: tt.snmp, Poll: site.Poll{Targets: tt.targets}}
			st.Normalize()
			if err := st.Validate(); err != nil {
				t.Fatal(err)
			}
			sink := &pollSink{}
			col, err := New(Config{SitePath: "unused", Sink: sink, Log: logtest.New(t)})
			if err != nil {
				t.Fatal(err)
			}
			r, err := col.PollRound(context.Background(), st)
			if err != nil || r != nil || len(sink.msgs) != 0 {
				t.Errorf("PollRound = %v, %v (%d enqueued), want nothing", r, err,
					len(sink.msgs))
			}
		})
	}
}
