package server

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// helloRefused opens a Connect stream whose Hello lists roles and returns the error that
// ends it; a response before it (a Welcome, a site configuration) fails the test.
func (e *env) helloRefused(a enrolled, roles ...string) error {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := wardv1.NewAgentServiceClient(e.dial(a.cert)).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&wardv1.ConnectRequest{Body: &wardv1.ConnectRequest_Hello{
		Hello: &wardv1.Hello{Host: &wardv1.HostFacts{Hostname: "srv-02",
			Roles: roles}}}}); err != nil {
		t.Fatal(err)
	}
	m, err := recvTimeout(s)
	if err == nil {
		t.Fatalf("hello with roles %q answered %v, want the stream refused", roles, m)
	}
	return err
}

// TestCollectorRoleComesFromTheToken runs a controller with a clinic's site configuration
// (an SNMP community): a host agent whose Hello claims collector is refused with
// PermissionDenied naming the role and gets no configuration, nothing of it stored; a
// host agent cannot send a discovery report; an agent enrolled with a collector token
// gets the configuration; and once an operator allows the host agent the role, it does
// too.
func TestCollectorRoleComesFromTheToken(t *testing.T) {
	e := newEnv(t, nil)
	host := e.enroll("clinic-a")
	col := e.enrollAs("clinic-a", "collector")
	inv := wardv1.NewInventoryServiceClient(e.dial(e.admin))
	_, err := inv.SetSiteConfig(ctxT(t), &wardv1.SetSiteConfigRequest{Tenant: "clinic-a",
		Config: &wardv1.SiteConfig{Subnets: []string{"10.20.0.0/24"},
			Snmp: []*wardv1.SNMPCredential{{Version: "v2c", Community: "clinic-ro"}}}})
	if err != nil {
		t.Fatal(err)
	}

	err = e.helloRefused(host, "host", "collector")
	if status.Code(err) != codes.PermissionDenied ||
		!strings.Contains(status.Convert(err).Message(), `"collector"`) {
		t.Fatalf("host agent claiming collector: %v, want PermissionDenied naming it", err)
	}
	if a := e.getAgent(host.id); a.GetLastSeen() != nil || a.GetHost().GetHostname() != "srv-01" {
		t.Errorf("the refused hello was stored: %v", a)
	}
	if !strings.Contains(e.logs.String(), "agent hello refused") {
		t.Error("the refusal was not logged")
	}

	// As a host it connects, but may not report discoveries.
	hs := e.connectAs(host, "host")
	hs.sendRefused(&wardv1.ConnectRequest{Seq: 1, Body: &wardv1.ConnectRequest_DiscoveryReport{
		DiscoveryReport: &wardv1.DiscoveryReport{ScanId: "s1", Subnet: "10.20.0.0/24",
			Complete: true, Devices: []*wardv1.DiscoveredDevice{{Mac: "00:14:22:3a:5b:11",
				Addresses: []string{"10.20.0.11"}}}}}}, codes.PermissionDenied)
	devs, err := inv.ListDevices(ctxT(t), &wardv1.ListDevicesRequest{Tenant: "clinic-a"})
	if err != nil || len(devs.GetDevices()) != 0 {
		t.Errorf("devices after a host agent's report = %v, %v; want none", devs, err)
	}

	// The collector gets the configuration.
	if c := e.connectAs(col, "host", "collector").siteConfig(); len(c.SNMP) != 1 ||
		c.SNMP[0].Community != "clinic-ro" {
		t.Errorf("collector's configuration = %+v", c)
	}
	if got := e.getAgent(col.id).GetRoles(); strings.Join(got, ",") != "host,collector" {
		t.Errorf("collector's stored roles = %q", got)
	}

	// An operator allows the host agent the role: its open stream is reset, and as a
	// collector it gets the configuration.
	hs = e.connectAs(host, "host")
	_, err = e.adminClient().SetAgentRoles(ctxT(t), &wardv1.SetAgentRolesRequest{
		Id: host.id, Roles: []string{"host", "collector"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hs.next(); status.Code(err) != codes.Aborted {
		t.Errorf("open stream after the roles changed: %v, want Aborted", err)
	}
	if c := e.connectAs(host, "host", "collector").siteConfig(); len(c.SNMP) != 1 {
		t.Errorf("allowed collector's configuration = %+v", c)
	}
}
