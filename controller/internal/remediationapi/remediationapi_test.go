package remediationapi

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/adminapi/adminapitest"
	"github.com/wardsec/ward/controller/internal/authz"
	"github.com/wardsec/ward/controller/internal/baselines"
	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/install"
	"github.com/wardsec/ward/controller/internal/remediation"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
	"github.com/wardsec/ward/pkg/baseline"
	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*defaultPolicy[...]).processItems"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*Cache[...]).processItems"),
	)
}

// sender keeps what would go to agent streams; every agent is connected.
type sender struct {
	mu   sync.Mutex
	sent map[string]int
}

func (s *sender) Send(agent string, _ *wardv1.ConnectResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent[agent]++
	return nil
}

// env is the RemediationService served over mTLS on loopback with the authz
// interceptors, on the store of an adminapitest installation. Tenants t1 and t2; agents
// a1 (t1, tier 1), a3 (t1, tier 3), b1 (t2).
type env struct {
	*adminapitest.Env
	addr   string
	engine *remediation.Engine
	send   *sender
}

func newEnv(t *testing.T) *env {
	base := adminapitest.New(t)
	log := adminapitest.Log(t)
	e := &env{Env: base, send: &sender{sent: map[string]int{}}}
	st := base.Store.(*badger.Store)
	key, err := ca.LoadPolicyKey(base.Dir)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := baselines.New(baselines.Config{Store: st, Signer: key, Sender: e.send,
		Log: log})
	if err != nil {
		t.Fatal(err)
	}
	e.engine, err = remediation.New(remediation.Config{Store: st, Catalog: mgr,
		Signer: key, Sender: e.send, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	api, err := New(Config{Store: st, Engine: e.engine, Baselines: mgr, Log: log})
	if err != nil {
		t.Fatal(err)
	}

	p := install.PathsOf(base.Dir)
	pair, err := pki.LoadKeyPair(p.ControllerCert, p.ControllerKey)
	if err != nil {
		t.Fatal(err)
	}
	az := authz.New(st, adminapitest.TrustDomain, log, nil)
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair},
		ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: base.CA.Roots(),
		VerifyConnection: az.VerifyConnection})),
		grpc.ChainUnaryInterceptor(az.UnaryInterceptor()))
	api.Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = lis.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})

	base.Tenant("t1")
	base.Tenant("t2")
	base.Agent("t1", "a1")
	base.Agent("t1", "a3")
	base.Agent("t2", "b1")
	st.UpdateAgent(context.Background(), "a3", func(a *store.Agent) error {
		a.Tier = 3
		return nil
	})
	return e
}

func (e *env) client(c *adminapitest.Cred) wardv1.RemediationServiceClient {
	e.T.Helper()
	var get func() (*tls.Certificate, error)
	if c != nil {
		get = func() (*tls.Certificate, error) { return &c.TLS, nil }
	}
	cfg := pki.ClientConfig(e.CA.Roots(), "localhost", get)
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(func() { conn.Close() })
	return wardv1.NewRemediationServiceClient(conn)
}

func (e *env) fail(agent, check string) {
	e.T.Helper()
	err := e.engine.HandleDrift(context.Background(), "t1", agent, &wardv1.DriftReport{
		Results: []*wardv1.CheckResult{{CheckId: check, State: wardv1.CheckState_CHECK_STATE_FAIL,
			Observed: "PasswordAuthentication yes", Since: timestamppb.Now()}}})
	if err != nil {
		e.T.Fatal(err)
	}
}

func code(err error) codes.Code { return status.Code(err) }

func TestIncidentsByRoleAndTenant(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.client(ptr(e.AdminCred()))
	tech1 := e.client(ptr(e.Operator("tech1", store.RoleTechnician, "t1")))
	tech2 := e.client(ptr(e.Operator("tech2", store.RoleTechnician, "t2")))
	auditor := e.client(ptr(e.Operator("aud", store.RoleAuditor)))
	agent := e.client(ptr(e.AgentCert("t1", "a1")))
	anon := e.client(nil)

	e.fail("a3", "SSH-002") // tier 3: waits for approval
	e.fail("a1", "SSH-002") // tier 1: remediating

	list, err := admin.ListIncidents(ctx, &wardv1.ListIncidentsRequest{})
	if err != nil || len(list.GetIncidents()) != 2 {
		t.Fatalf("admin list: %v, %v", list, err)
	}
	var waiting *wardv1.Incident
	for _, i := range list.GetIncidents() {
		if i.GetAgent() == "a3" {
			waiting = i
		}
	}
	if waiting.GetState() != string(store.IncidentAwaitingApproval) {
		t.Fatalf("tier-3 incident %s", waiting.GetState())
	}

	// Who may see it.
	if l, _ := tech2.ListIncidents(ctx, &wardv1.ListIncidentsRequest{}); len(l.GetIncidents()) != 0 {
		t.Errorf("technician of t2 sees %d incidents of t1", len(l.GetIncidents()))
	}
	_, err = tech2.GetIncident(ctx, &wardv1.GetIncidentRequest{Id: waiting.GetId()})
	if code(err) != codes.NotFound {
		t.Errorf("technician of t2 GetIncident: %v, want NotFound", err)
	}
	if l, err := auditor.ListIncidents(ctx, &wardv1.ListIncidentsRequest{}); err != nil ||
		len(l.GetIncidents()) != 2 {
		t.Errorf("auditor list: %v, %v", l, err)
	}
	_, err = agent.ListIncidents(ctx, &wardv1.ListIncidentsRequest{})
	if code(err) != codes.PermissionDenied {
		t.Errorf("agent certificate: %v, want PermissionDenied", err)
	}
	_, err = anon.ListIncidents(ctx, &wardv1.ListIncidentsRequest{})
	if code(err) != codes.Unauthenticated {
		t.Errorf("no certificate: %v, want Unauthenticated", err)
	}

	// Who may approve it.
	_, err = auditor.ApproveIncident(ctx, &wardv1.ApproveIncidentRequest{Id: waiting.GetId()})
	if code(err) != codes.PermissionDenied {
		t.Errorf("auditor approve: %v, want PermissionDenied", err)
	}
	_, err = tech2.ApproveIncident(ctx, &wardv1.ApproveIncidentRequest{Id: waiting.GetId()})
	if code(err) != codes.NotFound {
		t.Errorf("technician of t2 approve: %v, want NotFound", err)
	}
	got, err := tech1.ApproveIncident(ctx, &wardv1.ApproveIncidentRequest{Id: waiting.GetId()})
	if err != nil || got.GetIncident().GetState() != "remediating" ||
		got.GetIncident().GetApprovedBy() != "tech1" {
		t.Fatalf("technician of t1 approve: %v, %v", got, err)
	}
	_, err = tech1.ApproveIncident(ctx, &wardv1.ApproveIncidentRequest{Id: waiting.GetId()})
	if code(err) != codes.FailedPrecondition {
		t.Errorf("second approve: %v, want FailedPrecondition", err)
	}

	show, err := auditor.GetIncident(ctx, &wardv1.GetIncidentRequest{Id: waiting.GetId()})
	if err != nil || len(show.GetIncident().GetHistory()) < 3 {
		t.Errorf("history: %v, %v", show, err)
	}

	// Escalate and resolve.
	_, err = auditor.ResolveIncident(ctx, &wardv1.ResolveIncidentRequest{Id: waiting.GetId()})
	if code(err) != codes.PermissionDenied {
		t.Errorf("auditor resolve: %v", err)
	}
	esc, err := tech1.EscalateIncident(ctx, &wardv1.EscalateIncidentRequest{
		Id: waiting.GetId(), Reason: "needs a site visit"})
	if err != nil || esc.GetIncident().GetState() != "escalated" {
		t.Errorf("escalate: %v, %v", esc, err)
	}
	res, err := tech1.ResolveIncident(ctx, &wardv1.ResolveIncidentRequest{Id: waiting.GetId()})
	if err != nil || res.GetIncident().GetState() != "resolved" {
		t.Errorf("resolve: %v, %v", res, err)
	}
	_, err = admin.ListIncidents(ctx, &wardv1.ListIncidentsRequest{State: "bogus"})
	if code(err) != codes.InvalidArgument {
		t.Errorf("bad state: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestBaselinesChecksRunbooksAndTier(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.client(ptr(e.AdminCred()))
	tech1 := e.client(ptr(e.Operator("tech1", store.RoleTechnician, "t1")))
	auditor := e.client(ptr(e.Operator("aud", store.RoleAuditor, "t1")))

	bl, err := auditor.ListBaselines(ctx, &wardv1.ListBaselinesRequest{})
	if err != nil || len(bl.GetBaselines()) != 1 ||
		bl.GetBaselines()[0].GetBaselineId() != "hipaa-v1" {
		t.Fatalf("auditor baselines: %v, %v", bl, err)
	}
	shipped := string(baseline.ShippedDocument())
	broken := strings.Replace(shipped, "version: 1.0.0", "version: 2.0.0\nnope: 1", 1)
	_, err = tech1.PushBaseline(ctx, &wardv1.PushBaselineRequest{Tenant: "t1",
		FileName: "b.yaml", Document: []byte(broken)})
	if code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "b.yaml:") {
		t.Errorf("broken push: %v", err)
	}
	_, err = auditor.PushBaseline(ctx, &wardv1.PushBaselineRequest{Tenant: "t1",
		Document: []byte(shipped)})
	if code(err) != codes.PermissionDenied {
		t.Errorf("auditor push: %v", err)
	}
	_, err = tech1.PushBaseline(ctx, &wardv1.PushBaselineRequest{Tenant: "t2",
		Document: []byte(shipped)})
	if code(err) != codes.NotFound {
		t.Errorf("technician push to another tenant: %v", err)
	}
	next := strings.Replace(shipped, "version: 1.0.0", "version: 1.2.0", 1)
	pushed, err := tech1.PushBaseline(ctx, &wardv1.PushBaselineRequest{Tenant: "t1",
		Document: []byte(next)})
	if err != nil || pushed.GetBaseline().GetVersion() != "1.2.0" ||
		pushed.GetBaseline().GetPublishedBy() != "tech1" {
		t.Fatalf("push: %v, %v", pushed, err)
	}
	show, err := admin.ShowBaseline(ctx, &wardv1.ShowBaselineRequest{Tenant: "t1"})
	if err != nil || string(show.GetDocument()) != next {
		t.Errorf("show after push: %v", err)
	}
	if e.send.sent["a1"] != 1 || e.send.sent["b1"] != 0 {
		t.Errorf("baseline sent %v, want a1 once and b1 never", e.send.sent)
	}

	_, err = tech1.ExcludeCheck(ctx, &wardv1.ExcludeCheckRequest{Tenant: "t1",
		Check: "FW-001", Reason: "perimeter firewall"})
	if err != nil {
		t.Error(err)
	}

	e.fail("a1", "AUD-001")
	checks, err := auditor.ListChecks(ctx, &wardv1.ListChecksRequest{Agent: "a1",
		Failing: true})
	if err != nil || len(checks.GetChecks()) != 1 || checks.GetChecks()[0].GetCheck() != "AUD-001" {
		t.Errorf("failing checks: %v, %v", checks, err)
	}

	rbs, err := auditor.ListRunbooks(ctx, &wardv1.ListRunbooksRequest{})
	if err != nil || len(rbs.GetRunbooks()) < 10 {
		t.Errorf("runbooks: %d, %v", len(rbs.GetRunbooks()), err)
	}
	rb, err := auditor.GetRunbook(ctx, &wardv1.GetRunbookRequest{Id: "RB-SSH-001"})
	if err != nil || !rb.GetRunbook().GetAutoRemediate() {
		t.Errorf("RB-SSH-001: %v, %v", rb, err)
	}
	_, err = auditor.RunRunbook(ctx, &wardv1.RunRunbookRequest{Agent: "a1",
		Runbook: "RB-SSH-001", DryRun: true})
	if code(err) != codes.PermissionDenied {
		t.Errorf("auditor run: %v", err)
	}
	run, err := tech1.RunRunbook(ctx, &wardv1.RunRunbookRequest{Agent: "a1",
		Runbook: "RB-SSH-001", DryRun: true})
	if err != nil || run.GetStatus() != "sent" {
		t.Errorf("dry run: %v, %v", run, err)
	}
	_, err = tech1.RunRunbook(ctx, &wardv1.RunRunbookRequest{Agent: "b1",
		Runbook: "RB-SSH-001"})
	if code(err) != codes.NotFound {
		t.Errorf("run on another tenant's agent: %v", err)
	}

	_, err = tech1.SetAgentTier(ctx, &wardv1.SetAgentTierRequest{Agent: "a1", Tier: 4})
	if code(err) != codes.InvalidArgument {
		t.Errorf("tier 4: %v", err)
	}
	_, err = auditor.SetAgentTier(ctx, &wardv1.SetAgentTierRequest{Agent: "a1", Tier: 3})
	if code(err) != codes.PermissionDenied {
		t.Errorf("auditor tier: %v", err)
	}
	if _, err := tech1.SetAgentTier(ctx, &wardv1.SetAgentTierRequest{Agent: "a1",
		Tier: 3}); err != nil {
		t.Error(err)
	}
	if a, _ := e.Store.GetAgent(ctx, "a1"); a.Tier != 3 {
		t.Errorf("tier %d, want 3", a.Tier)
	}
}
