package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/adminapi/adminapitest"
	"github.com/wardsec/ward/controller/internal/authz"
	"github.com/wardsec/ward/controller/internal/install"
	"github.com/wardsec/ward/controller/internal/inventory"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/pki"
	"github.com/wardsec/ward/pkg/site"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// inventoryCLI serves the InventoryService of the test controller's store over mTLS with
// the real authz interceptors, and points wardctl at it.
func inventoryCLI(t *testing.T) (*cli, *inventory.Inventory) {
	c := newCLI(t)
	st, ok := c.e.Store.(inventory.Store)
	if !ok {
		t.Fatal("the test store does not implement inventory.Store")
	}
	log := adminapitest.Log(t)
	inv, err := inventory.New(inventory.Config{Store: st, Log: log})
	if err != nil {
		t.Fatal(err)
	}

	az := authz.New(c.e.Store, adminapitest.TrustDomain, log, nil)
	p := install.PathsOf(c.e.Dir)
	pair, err := pki.LoadKeyPair(p.ControllerCert, p.ControllerKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair},
		ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: c.e.CA.Roots(),
		VerifyConnection: az.VerifyConnection})),
		grpc.ChainUnaryInterceptor(az.UnaryInterceptor()))
	inventory.NewServer(inv).Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	c.env["WARD_CONTROLLER"] = lis.Addr().String()
	return c, inv
}

// tenant creates a tenant in the store.
func (c *cli) tenant(id string) {
	c.t.Helper()
	err := c.e.Store.CreateTenant(context.Background(), store.Tenant{ID: id,
		CreatedAt: time.Now()})
	if err != nil {
		c.t.Fatal(err)
	}
}

// operatorEnv writes an operator's credentials and returns wardctl's environment for it.
func (c *cli) operatorEnv(name string, role store.Role, tenants ...string) map[string]string {
	cred := c.e.Operator(name, role, tenants...)
	dir := c.t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, cred.CertPEM, 0o600); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(key, cred.KeyPEM, 0o600); err != nil {
		c.t.Fatal(err)
	}
	env := map[string]string{}
	for k, v := range c.env {
		env[k] = v
	}
	env["WARD_CERT"], env["WARD_KEY"] = cert, key
	return env
}

func TestDeviceCommands(t *testing.T) {
	c, inv := inventoryCLI(t)
	ctx := context.Background()
	c.tenant("clinic-a")
	err := inv.Ingest(ctx, "clinic-a", "collector-1", &wardv1.DiscoveryReport{ScanId: "s1",
		Subnet: "10.1.0.0/24", HostsDone: 254, HostsFound: 3, Complete: true,
		Devices: []*wardv1.DiscoveredDevice{
			{Mac: "44:4b:5d:10:33:40", Addresses: []string{"10.1.0.40"},
				Services: []*wardv1.DiscoveredService{{Port: 104, Protocol: "tcp",
					Name: "dicom", Extra: "dicom: DICOM Service Provider discovered!"}}},
			{Mac: "00:14:22:3a:5b:11", Addresses: []string{"10.1.0.11"},
				OsGuess: "Linux 5.0 - 5.14", Services: []*wardv1.DiscoveredService{{Port: 22,
					Protocol: "tcp", Name: "ssh", Product: "OpenSSH"}}},
			{Mac: "00:1b:a9:3c:20:51", Addresses: []string{"10.1.0.51"},
				Services: []*wardv1.DiscoveredService{{Port: 80, Protocol: "tcp",
					Name: "http", Extra: "Brother HL-L2350DW series"}}},
		}})
	if err != nil {
		t.Fatal(err)
	}

	out := c.ok("device", "list")
	for _, want := range []string{"dicom_modality", "pending_approval", "linux_server",
		"approved", "printer", "discovered", "GE Healthcare"} {
		if !strings.Contains(out, want) {
			t.Errorf("device list lacks %q:\n%s", want, out)
		}
	}
	out = c.ok("device", "list", "--tier", "3", "--state", "pending_approval", "-o", "json")
	var listed []map[string]any
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 1 ||
		listed[0]["type"] != "dicom_modality" {
		t.Fatalf("filtered list: %v %s", err, out)
	}

	out = c.ok("device", "show", "10.1.0.40")
	for _, want := range []string{"port 104/tcp answered as DICOM", "44:4B:5D",
		"164.308(a)(7)", "passive"} {
		if !strings.Contains(out, want) {
			t.Errorf("device show lacks %q:\n%s", want, out)
		}
	}

	out = c.ok("device", "approve", "mac:44:4b:5d:10:33:40")
	if !strings.Contains(out, "agentless") || !strings.Contains(out, "approved by admin") {
		t.Errorf("approve:\n%s", out)
	}
	if _, errOut, code := c.run("device", "approve", "mac:44:4b:5d:10:33:40"); code == 0 ||
		!strings.Contains(errOut, "failed precondition") {
		t.Errorf("second approve: exit %d, %s", code, errOut)
	}
	if _, errOut, code := c.run("device", "exclude", "10.1.0.51"); code == 0 ||
		!strings.Contains(errOut, "--reason") {
		t.Errorf("exclude without reason: exit %d, %s", code, errOut)
	}
	out = c.ok("device", "exclude", "10.1.0.51", "--reason", "belongs to the landlord")
	if !strings.Contains(out, "excluded") || !strings.Contains(out, "belongs to the landlord") {
		t.Errorf("exclude:\n%s", out)
	}

	out = c.ok("discovery", "status")
	if !strings.Contains(out, "collector-1") || !strings.Contains(out, "complete") ||
		!strings.Contains(out, "254") {
		t.Errorf("discovery status:\n%s", out)
	}
}

func TestDeviceRolesAndTenants(t *testing.T) {
	c, inv := inventoryCLI(t)
	ctx := context.Background()
	c.tenant("clinic-a")
	c.tenant("clinic-b")
	for _, tenant := range []string{"clinic-a", "clinic-b"} {
		if err := inv.Ingest(ctx, tenant, "c", &wardv1.DiscoveryReport{ScanId: "s",
			Devices: []*wardv1.DiscoveredDevice{{Mac: "44:4b:5d:10:33:40",
				Addresses: []string{"10.1.0.40"}, Services: []*wardv1.DiscoveredService{
					{Port: 104, Protocol: "tcp", Name: "acr-nema"}}}}}); err != nil {
			t.Fatal(err)
		}
	}

	admin := c.env
	c.env = c.operatorEnv("tech-a", store.RoleTechnician, "clinic-a")
	out := c.ok("device", "list")
	if strings.Contains(out, "clinic-b") || !strings.Contains(out, "clinic-a") {
		t.Errorf("technician of clinic-a sees:\n%s", out)
	}
	if _, errOut, code := c.run("device", "show", "10.1.0.40", "--tenant", "clinic-b"); code == 0 ||
		!strings.Contains(errOut, "not found") {
		t.Errorf("other tenant's device: exit %d %s", code, errOut)
	}
	c.ok("device", "approve", "10.1.0.40")

	c.env = admin
	c.env = c.operatorEnv("auditor", store.RoleAuditor)
	if _, errOut, code := c.run("device", "exclude", "10.1.0.40", "--tenant", "clinic-b",
		"--reason", "x"); code == 0 || !strings.Contains(errOut, "permission denied") {
		t.Errorf("auditor exclude: exit %d %s", code, errOut)
	}
	if _, errOut, code := c.run("device", "show", "10.1.0.40"); code == 0 ||
		!strings.Contains(errOut, "tenant: required") {
		t.Errorf("auditor of every tenant without --tenant: exit %d %s", code, errOut)
	}
	c.ok("device", "show", "10.1.0.40", "--tenant", "clinic-b")
}

func TestSiteConfigCommands(t *testing.T) {
	c, _ := inventoryCLI(t)
	c.tenant("clinic-a")
	dir := t.TempDir()
	auth, priv := filepath.Join(dir, "auth"), filepath.Join(dir, "priv")
	for _, f := range []string{auth, priv} {
		if err := os.WriteFile(f, []byte("s3cret-"+filepath.Base(f)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	community := filepath.Join(dir, "community")
	if err := os.WriteFile(community, []byte("public-ish\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	if _, errOut, code := c.run("site", "get"); code == 0 ||
		!strings.Contains(errOut, "no site configuration") {
		t.Errorf("get before set: exit %d %s", code, errOut)
	}
	if _, errOut, code := c.run("site", "set", "--subnet", "10.1.0.1/24"); code == 0 ||
		!strings.Contains(errOut, "host bits") {
		t.Errorf("subnet with host bits: exit %d %s", code, errOut)
	}
	if _, errOut, code := c.run("site", "set", "--subnet", "10.1.0.0/24",
		"--snmp", "v3:ward:NONE:"+auth+":AES:"+priv); code == 0 ||
		!strings.Contains(errOut, "auth_protocol") || strings.Contains(errOut, "s3cret") {
		t.Errorf("v3 without a valid auth protocol: exit %d %s", code, errOut)
	}

	out := c.ok("site", "set", "--subnet", "10.1.0.0/24", "--passive-subnet", "10.9.0.0/24",
		"--exclude", "10.1.0.1", "--snmp", "v3:ward:SHA256:"+auth+":AES:"+priv,
		"--snmp", "v2c:"+community, "--scan-interval", "6h", "--probe-rate", "50",
		"--poll-interval", "30s")
	for _, want := range []string{"10.1.0.0/24", "10.9.0.0/24", "6h0m0s", "30s", "v2c",
		"auth SHA256 (set: yes)", "warning"} {
		if !strings.Contains(out, want) {
			t.Errorf("site set lacks %q:\n%s", want, out)
		}
	}
	out = c.ok("site", "get", "-o", "json")
	if strings.Contains(out, "s3cret") || strings.Contains(out, "public-ish") {
		t.Errorf("secrets shown:\n%s", out)
	}

	if _, errOut, code := c.run("site", "set", "--subnet", "10.1.0.0/24",
		"--poll-interval", "5s"); code == 0 || !strings.Contains(errOut, "poll.interval") {
		t.Errorf("poll interval below 10s: exit %d %s", code, errOut)
	}

	// Setting again without secret files keeps the stored secrets.
	out = c.ok("site", "set", "--subnet", "10.1.0.0/24",
		"--snmp", "v3:ward:SHA256::AES:")
	if !strings.Contains(out, "priv AES (set: yes)") {
		t.Errorf("secrets not kept:\n%s", out)
	}
}

// TestDeviceHealthShown polls an agentless switch through the inventory and finds its
// health in device list (HEALTH, and the health object with -o json) and device show.
func TestDeviceHealthShown(t *testing.T) {
	c, inv := inventoryCLI(t)
	ctx := context.Background()
	c.tenant("clinic-a")
	st := c.e.Store.(inventory.Store)
	if err := st.PutSiteConfig(ctx, "clinic-a", store.SiteConfig{Config: site.Config{
		Subnets: []string{"10.1.0.0/24"}}}); err != nil {
		t.Fatal(err)
	}
	err := inv.Ingest(ctx, "clinic-a", "collector-1", &wardv1.DiscoveryReport{ScanId: "s1",
		Complete: true, Devices: []*wardv1.DiscoveredDevice{{Mac: "00:00:0c:9a:11:02",
			Addresses: []string{"10.1.0.2"}, Methods: []string{"snmp"},
			Description: "Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M)"}}})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute)
	poll := func(seq uint64, p *wardv1.DevicePoll) {
		t.Helper()
		p.DeviceId, p.Address, p.PolledAt = "mac:00:00:0c:9a:11:02", "10.1.0.2",
			timestamppb.New(at.Add(time.Duration(seq)*time.Second))
		if err := inv.ApplyPolls(ctx, "clinic-a", "collector-1", seq,
			&wardv1.DevicePollReport{Tenant: "clinic-a",
				Polls: []*wardv1.DevicePoll{p}}); err != nil {
			t.Fatal(err)
		}
	}
	poll(1, &wardv1.DevicePoll{Reachable: true, UptimeCentiseconds: 360_000,
		Interfaces: []*wardv1.InterfaceCounters{{Index: 3, Name: "Gi0/3", OperStatus: 2,
			InErrors: 7}}})

	out := c.ok("device", "list")
	if !strings.Contains(out, "HEALTH") || !strings.Contains(out, " up") {
		t.Errorf("device list lacks the switch's health:\n%s", out)
	}
	out = c.ok("device", "list", "-o", "json")
	var listed []map[string]any
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 1 {
		t.Fatalf("list: %v %s", err, out)
	}
	if h, ok := listed[0]["health"].(map[string]any); !ok || h["reachable"] != true {
		t.Errorf("json health = %v", listed[0]["health"])
	}
	out = c.ok("device", "show", "10.1.0.2")
	for _, want := range []string{"1h0m0s", "3 Gi0/3 down: in errors 7"} {
		if !strings.Contains(out, want) {
			t.Errorf("device show lacks %q:\n%s", want, out)
		}
	}

	poll(2, &wardv1.DevicePoll{Error: "no answer with any credential"})
	if out := c.ok("device", "list"); !strings.Contains(out, "down (1 polls)") {
		t.Errorf("device list after a missed poll:\n%s", out)
	}
	if out := c.ok("device", "show", "10.1.0.2"); !strings.Contains(out,
		"no answer with any credential") {
		t.Errorf("device show lacks the poll error:\n%s", out)
	}
}
