package remediationapi

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/wardsec/ward/controller/internal/adminapi/adminapitest"
	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/remediation"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
	"github.com/wardsec/ward/pkg/pki"
	"github.com/wardsec/ward/pkg/policysig"
	"github.com/wardsec/ward/pkg/runbook"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// shortOperator returns a certificate for an existing operator valid for ttl.
func (e *env) shortOperator(name string, ttl time.Duration) adminapitest.Cred {
	e.T.Helper()
	key, err := pki.NewKey()
	if err != nil {
		e.T.Fatal(err)
	}
	csr, err := pki.NewCSR(key, name)
	if err != nil {
		e.T.Fatal(err)
	}
	chain, _, err := e.CA.SignOperator(csr, name, ttl)
	if err != nil {
		e.T.Fatal(err)
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		e.T.Fatal(err)
	}
	pair, err := tls.X509KeyPair(pki.EncodeCerts(chain...), keyPEM)
	if err != nil {
		e.T.Fatal(err)
	}
	return adminapitest.Cred{TLS: pair}
}

// TestRunChecksSendsSignedEvaluationCommands: admins and the tenant's technicians may
// ask agents to evaluate now; every other caller is refused before anything is issued;
// what is issued is an evaluate_baseline command signed with the policy key, addressed
// to the agent and its tenant, with an expiry and an id of its own.
func TestRunChecksSendsSignedEvaluationCommands(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.client(ptr(e.AdminCred()))
	tech1 := e.client(ptr(e.Operator("tech1", store.RoleTechnician, "t1")))
	tech2 := e.client(ptr(e.Operator("tech2", store.RoleTechnician, "t2")))
	auditor := e.client(ptr(e.Operator("aud", store.RoleAuditor)))
	revokedCred := e.Operator("gone", store.RoleAdmin)
	expiredCred := e.shortOperator("tech1", time.Second)
	if _, err := e.Store.UpdateOperator(ctx, "gone", func(o *store.Operator) error {
		o.Revoked = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	revoked := e.client(&revokedCred)
	agent := e.client(ptr(e.AgentCert("t1", "a1")))
	anon := e.client(nil)
	e.Agent("t1", "gone-agent")
	if _, err := e.Store.UpdateAgent(ctx, "gone-agent", func(a *store.Agent) error {
		a.Revoked = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // expiredCred is past its NotAfter
	expired := e.client(&expiredCred)

	refused := []struct {
		name   string
		client wardv1.RemediationServiceClient
		req    *wardv1.RunChecksRequest
		want   codes.Code
	}{
		{"auditor", auditor, &wardv1.RunChecksRequest{Agent: "a1"}, codes.PermissionDenied},
		{"auditor, tenant", auditor, &wardv1.RunChecksRequest{Tenant: "t1"},
			codes.PermissionDenied},
		{"technician of another tenant", tech2, &wardv1.RunChecksRequest{Agent: "a1"},
			codes.NotFound},
		{"technician of another tenant, tenant", tech2,
			&wardv1.RunChecksRequest{Tenant: "t1"}, codes.NotFound},
		{"agent certificate", agent, &wardv1.RunChecksRequest{Agent: "a1"},
			codes.PermissionDenied},
		{"no certificate", anon, &wardv1.RunChecksRequest{Agent: "a1"},
			codes.Unauthenticated},
		// Revoked and expired certificates are refused in the TLS handshake.
		{"revoked operator", revoked, &wardv1.RunChecksRequest{Agent: "a1"},
			codes.Unavailable},
		{"expired certificate", expired, &wardv1.RunChecksRequest{Agent: "a1"},
			codes.Unavailable},
		{"neither agent nor tenant", admin, &wardv1.RunChecksRequest{},
			codes.InvalidArgument},
		{"both agent and tenant", admin, &wardv1.RunChecksRequest{Agent: "a1", Tenant: "t1"},
			codes.InvalidArgument},
		{"unknown agent", admin, &wardv1.RunChecksRequest{Agent: "nope"}, codes.NotFound},
		{"unknown tenant", admin, &wardv1.RunChecksRequest{Tenant: "nope"}, codes.NotFound},
		{"revoked agent", admin, &wardv1.RunChecksRequest{Agent: "gone-agent"},
			codes.FailedPrecondition},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.client.RunChecks(ctx, tt.req)
			if code(err) != tt.want {
				t.Fatalf("RunChecks = %v, want %v", err, tt.want)
			}
		})
	}
	st := e.Store.(*badger.Store)
	for _, a := range []struct{ tenant, id string }{{"t1", "a1"}, {"t1", "a3"}, {"t2", "b1"},
		{"t1", "gone-agent"}} {
		if cmds, _ := st.UnfinishedCommands(ctx, a.tenant, a.id); len(cmds) != 0 {
			t.Fatalf("a refused call issued %d commands to %s", len(cmds), a.id)
		}
	}

	one, err := admin.RunChecks(ctx, &wardv1.RunChecksRequest{Agent: "b1",
		FullSnapshot: true})
	if err != nil || len(one.GetRuns()) != 1 || one.GetRuns()[0].GetStatus() != "sent" {
		t.Fatalf("admin, agent b1: %v, %v", one, err)
	}
	checkEvaluationCommand(t, e, one.GetRuns()[0].GetCommandId(), "t2", "b1", "admin", true)

	all, err := tech1.RunChecks(ctx, &wardv1.RunChecksRequest{Tenant: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	var agents []string
	for _, r := range all.GetRuns() {
		agents = append(agents, r.GetAgent())
		checkEvaluationCommand(t, e, r.GetCommandId(), "t1", r.GetAgent(), "tech1", false)
	}
	if len(agents) != 2 || agents[0] != "a1" || agents[1] != "a3" {
		t.Fatalf("tenant t1 evaluated %v, want a1 and a3 (not the revoked agent)", agents)
	}
	if all.GetRuns()[0].GetCommandId() == all.GetRuns()[1].GetCommandId() {
		t.Fatal("two agents got the same command id")
	}
	if e.send.sent["a1"] != 1 || e.send.sent["a3"] != 1 || e.send.sent["b1"] != 1 {
		t.Fatalf("sent %v, want one command to each of a1, a3, b1", e.send.sent)
	}
}

// checkEvaluationCommand checks the stored command: signed by the policy key, naming the
// agent and tenant, one evaluate_baseline step, an expiry in the future.
func checkEvaluationCommand(t *testing.T, e *env, id, tenant, agent, actor string, full bool) {
	t.Helper()
	c, err := e.Store.(*badger.Store).GetCommand(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tenant != tenant || c.Agent != agent || c.IssuedBy != actor ||
		c.Runbook != remediation.EvaluationRunbook || c.Incident != "" {
		t.Fatalf("command %s: %+v", id, c)
	}
	key, err := ca.LoadPolicyKey(e.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var sp wardv1.SignedPayload
	if err := proto.Unmarshal(c.Signed, &sp); err != nil {
		t.Fatal(err)
	}
	err = policysig.Verify(key.Public(), remediation.CommandPayloadType, policysig.Signed{
		PayloadType: sp.GetPayloadType(), Payload: sp.GetPayload(),
		Signature: sp.GetSignature(), KeyID: sp.GetKeyId()})
	if err != nil {
		t.Fatalf("command %s does not verify with the policy key: %v", id, err)
	}
	var spec wardv1.CommandSpec
	if err := proto.Unmarshal(sp.GetPayload(), &spec); err != nil {
		t.Fatal(err)
	}
	if spec.GetCommandId() != id || spec.GetAgentId() != agent || spec.GetTenant() != tenant ||
		!spec.GetExpiresAt().AsTime().After(time.Now()) || len(spec.GetSteps()) != 1 ||
		spec.GetSteps()[0].GetAction() != runbook.ActionEvaluateBaseline ||
		(spec.GetSteps()[0].GetParams()["full"] == "true") != full {
		t.Fatalf("command spec %v", &spec)
	}
}
