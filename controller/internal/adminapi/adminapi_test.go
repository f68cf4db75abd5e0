package adminapi_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/wardsec/ward/controller/internal/adminapi/adminapitest"
	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*defaultPolicy[...]).processItems"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*Cache[...]).processItems"),
	)
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

// world is an installation with two clinics, an agent in each, and one operator of each
// role.
type world struct {
	e                 *adminapitest.Env
	admin, tech, audA wardv1.AdminServiceClient // audA: auditor of clinic-a
	audAll            wardv1.AdminServiceClient // auditor without tenants
}

func newWorld(t *testing.T) *world {
	e := adminapitest.New(t)
	e.Tenant("clinic-a")
	e.Tenant("clinic-b")
	e.Agent("clinic-a", "agent-a")
	e.Agent("clinic-b", "agent-b")
	admin := e.AdminCred()
	tech := e.Operator("tech", store.RoleTechnician, "clinic-a")
	audA := e.Operator("aud-a", store.RoleAuditor, "clinic-a")
	audAll := e.Operator("aud-all", store.RoleAuditor)
	return &world{
		e:      e,
		admin:  adminapitest.Admin(e.Dial(&admin, nil)),
		tech:   adminapitest.Admin(e.Dial(&tech, nil)),
		audA:   adminapitest.Admin(e.Dial(&audA, nil)),
		audAll: adminapitest.Admin(e.Dial(&audAll, nil)),
	}
}

func TestAdminCanDoEverything(t *testing.T) {
	w := newWorld(t)
	ctx := ctxOf(t)

	ct, err := w.admin.CreateTenant(ctx, &wardv1.CreateTenantRequest{Id: "clinic-c"})
	if err != nil {
		t.Fatal(err)
	}
	if ct.Tenant.DisplayName != "clinic-c" || ct.Tenant.CreatedBy != "admin" {
		t.Errorf("tenant = %v", ct.Tenant)
	}
	_, err = w.admin.CreateTenant(ctx, &wardv1.CreateTenantRequest{Id: "clinic-c"})
	wantCode(t, "duplicate tenant", err, codes.AlreadyExists)

	tok, err := w.admin.CreateToken(ctx, &wardv1.CreateTokenRequest{Tenant: "clinic-b",
		Uses: 3, Cidr: "10.1.2.3/16", Tier: 2, Ttl: durationpb.New(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	checkToken(t, w.e, tok, "clinic-b")

	list, err := w.admin.ListAgents(ctx, &wardv1.ListAgentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if ids := agentIDs(list.Agents); !slices.Equal(ids, []string{"agent-a", "agent-b"}) {
		t.Errorf("agents = %v", ids)
	}
	rev, err := w.admin.RevokeAgent(ctx, &wardv1.RevokeAgentRequest{Id: "agent-b",
		Reason: "decommissioned"})
	if err != nil {
		t.Fatal(err)
	}
	if !rev.Agent.Revoked || rev.Agent.Online {
		t.Errorf("revoked agent = %v", rev.Agent)
	}
	if got := w.e.Closed.List(); !slices.Equal(got, []string{"agent-b"}) {
		t.Errorf("streams closed = %v, want [agent-b]", got)
	}
	stored, _ := w.e.Store.GetAgent(ctx, "agent-b")
	if !stored.Revoked || stored.RevokeReason != "decommissioned" || stored.RevokedAt.IsZero() {
		t.Errorf("stored agent = %+v", stored)
	}

	ops, err := w.admin.ListOperators(ctx, &wardv1.ListOperatorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ops.Operators) != 4 || ops.Operators[0].Name != "admin" {
		t.Errorf("operators = %v", ops.Operators)
	}
	_, err = w.admin.RevokeOperator(ctx, &wardv1.RevokeOperatorRequest{Name: "aud-all"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.admin.RevokeOperator(ctx, &wardv1.RevokeOperatorRequest{Name: "admin"})
	wantCode(t, "revoke self", err, codes.FailedPrecondition)
	_, err = w.admin.RevokeOperator(ctx, &wardv1.RevokeOperatorRequest{Name: "nobody"})
	wantCode(t, "revoke unknown operator", err, codes.NotFound)
	// Never connected before: refused at the handshake.
	_, err = w.audAll.ListTenants(ctx, &wardv1.ListTenantsRequest{})
	wantCode(t, "revoked operator", err, codes.Unavailable)
}

// checkToken checks that the secret is strong and printable, and that only its hash is
// stored and it redeems.
func checkToken(t *testing.T, e *adminapitest.Env, resp *wardv1.CreateTokenResponse,
	tenant string) {
	t.Helper()
	tok := resp.Token
	if len(resp.Secret) < 26 || strings.Trim(resp.Secret, "abcdefghijklmnopqrstuvwxyz234567") != "" {
		t.Errorf("secret %d chars, not lower-case base32 of at least 128 bits", len(resp.Secret))
	}
	if tok.Tenant != tenant || tok.UsesLeft != 3 || tok.Cidr != "10.1.0.0/16" ||
		tok.Tier != 2 || tok.Id == "" || strings.Contains(resp.Secret, tok.Id) {
		t.Errorf("token = %v", tok)
	}
	if d := tok.ExpiresAt.AsTime().Sub(tok.CreatedAt.AsTime()); d != time.Hour {
		t.Errorf("ttl = %v", d)
	}
	stored, err := e.Store.ListTokens(context.Background(), tenant)
	if err != nil || len(stored) != 1 {
		t.Fatalf("stored tokens: %v %v", stored, err)
	}
	sum := sha256.Sum256([]byte(resp.Secret))
	if string(stored[0].Hash) != string(sum[:]) {
		t.Error("stored hash is not SHA-256 of the secret")
	}
	_, err = e.Store.RedeemToken(context.Background(), sum[:], netip.MustParseAddr("10.1.9.9"),
		e.Now())
	if err != nil {
		t.Errorf("redeem: %v", err)
	}
}

func agentIDs(as []*wardv1.Agent) []string {
	var ids []string
	for _, a := range as {
		ids = append(ids, a.Id)
	}
	return ids
}

func TestTechnicianInsideAndOutsideItsTenant(t *testing.T) {
	w := newWorld(t)
	ctx := ctxOf(t)

	_, err := w.tech.CreateToken(ctx, &wardv1.CreateTokenRequest{Tenant: "clinic-a"})
	wantCode(t, "token in own tenant", err, codes.OK)
	_, err = w.tech.CreateToken(ctx, &wardv1.CreateTokenRequest{Tenant: "clinic-b"})
	wantCode(t, "token in other tenant", err, codes.PermissionDenied)

	list, err := w.tech.ListAgents(ctx, &wardv1.ListAgentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if ids := agentIDs(list.Agents); !slices.Equal(ids, []string{"agent-a"}) {
		t.Errorf("technician sees agents %v, want only agent-a", ids)
	}
	_, err = w.tech.ListAgents(ctx, &wardv1.ListAgentsRequest{Tenant: "clinic-b"})
	wantCode(t, "list other tenant", err, codes.NotFound)
	_, err = w.tech.GetAgent(ctx, &wardv1.GetAgentRequest{Id: "agent-b"})
	wantCode(t, "get agent of other tenant", err, codes.NotFound)
	_, err = w.tech.GetAgent(ctx, &wardv1.GetAgentRequest{Id: "agent-a"})
	wantCode(t, "get own agent", err, codes.OK)

	_, err = w.tech.RevokeAgent(ctx, &wardv1.RevokeAgentRequest{Id: "agent-b"})
	wantCode(t, "revoke agent of other tenant", err, codes.NotFound)
	if a, _ := w.e.Store.GetAgent(ctx, "agent-b"); a.Revoked {
		t.Error("agent-b was revoked by a technician of another tenant")
	}
	_, err = w.tech.RevokeAgent(ctx, &wardv1.RevokeAgentRequest{Id: "agent-a"})
	wantCode(t, "revoke own agent", err, codes.OK)

	tenants, err := w.tech.ListTenants(ctx, &wardv1.ListTenantsRequest{})
	if err != nil || len(tenants.Tenants) != 1 || tenants.Tenants[0].Id != "clinic-a" {
		t.Errorf("technician tenants = %v, %v", tenants, err)
	}

	_, err = w.tech.CreateTenant(ctx, &wardv1.CreateTenantRequest{Id: "clinic-x"})
	wantCode(t, "create tenant", err, codes.PermissionDenied)
	_, err = w.tech.ListOperators(ctx, &wardv1.ListOperatorsRequest{})
	wantCode(t, "list operators", err, codes.PermissionDenied)
	_, err = w.tech.RevokeOperator(ctx, &wardv1.RevokeOperatorRequest{Name: "aud-a"})
	wantCode(t, "revoke operator", err, codes.PermissionDenied)
	_, err = w.tech.CreateOperator(ctx, operatorRequest(t, "tech2", wardv1.Role_ROLE_ADMIN))
	wantCode(t, "create operator", err, codes.PermissionDenied)

	// Tokens of other tenants are invisible and cannot be revoked.
	other, err := w.admin.CreateToken(ctx, &wardv1.CreateTokenRequest{Tenant: "clinic-b"})
	if err != nil {
		t.Fatal(err)
	}
	toks, err := w.tech.ListTokens(ctx, &wardv1.ListTokensRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks.Tokens {
		if tk.Tenant != "clinic-a" {
			t.Errorf("technician sees token of %s", tk.Tenant)
		}
	}
	_, err = w.tech.RevokeToken(ctx, &wardv1.RevokeTokenRequest{Id: other.Token.Id})
	wantCode(t, "revoke token of other tenant", err, codes.NotFound)
}

func TestAuditorReadsButNeverWrites(t *testing.T) {
	w := newWorld(t)
	ctx := ctxOf(t)
	tok, err := w.admin.CreateToken(ctx, &wardv1.CreateTokenRequest{Tenant: "clinic-a"})
	if err != nil {
		t.Fatal(err)
	}

	for name, c := range map[string]wardv1.AdminServiceClient{"scoped": w.audA,
		"unscoped": w.audAll} {
		t.Run(name, func(t *testing.T) {
			_, err := c.CreateTenant(ctx, &wardv1.CreateTenantRequest{Id: "clinic-z"})
			wantCode(t, "create tenant", err, codes.PermissionDenied)
			_, err = c.CreateToken(ctx, &wardv1.CreateTokenRequest{Tenant: "clinic-a"})
			wantCode(t, "create token", err, codes.PermissionDenied)
			_, err = c.RevokeToken(ctx, &wardv1.RevokeTokenRequest{Id: tok.Token.Id})
			wantCode(t, "revoke token", err, codes.PermissionDenied)
			_, err = c.RevokeAgent(ctx, &wardv1.RevokeAgentRequest{Id: "agent-a"})
			wantCode(t, "revoke agent", err, codes.PermissionDenied)
			_, err = c.CreateOperator(ctx, operatorRequest(t, "x", wardv1.Role_ROLE_AUDITOR))
			wantCode(t, "create operator", err, codes.PermissionDenied)
			_, err = c.RevokeOperator(ctx, &wardv1.RevokeOperatorRequest{Name: "tech"})
			wantCode(t, "revoke operator", err, codes.PermissionDenied)

			_, err = c.GetAgent(ctx, &wardv1.GetAgentRequest{Id: "agent-a"})
			wantCode(t, "get agent", err, codes.OK)
			_, err = c.ListTokens(ctx, &wardv1.ListTokensRequest{Tenant: "clinic-a"})
			wantCode(t, "list tokens", err, codes.OK)
			_, err = c.ListOperators(ctx, &wardv1.ListOperatorsRequest{})
			wantCode(t, "list operators", err, codes.OK)
		})
	}
	if a, _ := w.e.Store.GetAgent(ctx, "agent-a"); a.Revoked {
		t.Error("an auditor revoked an agent")
	}

	scoped, err := w.audA.ListAgents(ctx, &wardv1.ListAgentsRequest{})
	if err != nil || !slices.Equal(agentIDs(scoped.Agents), []string{"agent-a"}) {
		t.Errorf("scoped auditor agents = %v, %v", scoped, err)
	}
	_, err = w.audA.GetAgent(ctx, &wardv1.GetAgentRequest{Id: "agent-b"})
	wantCode(t, "scoped auditor, other tenant's agent", err, codes.NotFound)
	all, err := w.audAll.ListAgents(ctx, &wardv1.ListAgentsRequest{})
	if err != nil || len(all.Agents) != 2 {
		t.Errorf("unscoped auditor agents = %v, %v", all, err)
	}
}

func TestRefusedCallers(t *testing.T) {
	w := newWorld(t)
	ctx := ctxOf(t)
	agent := w.e.AgentCert("clinic-a", "agent-a")
	_, err := adminapitest.Admin(w.e.Dial(&agent, nil)).ListTenants(ctx,
		&wardv1.ListTenantsRequest{})
	wantCode(t, "agent certificate", err, codes.PermissionDenied)

	_, err = adminapitest.Admin(w.e.Dial(nil, nil)).ListTenants(ctx,
		&wardv1.ListTenantsRequest{})
	wantCode(t, "no certificate", err, codes.Unauthenticated)

	// A certificate from another CA for the same identity fails the handshake.
	other, err := ca.Create(t.TempDir(), adminapitest.TrustDomain)
	if err != nil {
		t.Fatal(err)
	}
	forged := foreignCred(t, other, "admin")
	_, err = adminapitest.Admin(w.e.Dial(&forged, nil)).ListTenants(ctx,
		&wardv1.ListTenantsRequest{})
	wantCode(t, "certificate of another ca", err, codes.Unavailable)

	// Revoked operator, on a connection opened before the revocation.
	_, err = w.tech.ListAgents(ctx, &wardv1.ListAgentsRequest{})
	wantCode(t, "technician before revocation", err, codes.OK)
	_, err = w.admin.RevokeOperator(ctx, &wardv1.RevokeOperatorRequest{Name: "tech"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.tech.ListAgents(ctx, &wardv1.ListAgentsRequest{})
	wantCode(t, "revoked operator", err, codes.PermissionDenied)
}

func foreignCred(t *testing.T, c *ca.CA, name string) adminapitest.Cred {
	key, _ := pki.NewKey()
	csr, _ := pki.NewCSR(key, name)
	chain, _, err := c.SignOperator(csr, name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := pki.EncodeKey(key)
	pair, err := tls.X509KeyPair(pki.EncodeCerts(chain...), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return adminapitest.Cred{TLS: pair}
}

func operatorRequest(t *testing.T, name string, role wardv1.Role,
	tenants ...string) *wardv1.CreateOperatorRequest {
	key, _ := pki.NewKey()
	csr, err := pki.NewCSR(key, name)
	if err != nil {
		t.Fatal(err)
	}
	return &wardv1.CreateOperatorRequest{Name: name, Role: role, Tenants: tenants, CsrDer: csr}
}

func TestCreateOperatorIssuesAWorkingCertificate(t *testing.T) {
	w := newWorld(t)
	ctx := ctxOf(t)
	key, _ := pki.NewKey()
	csr, _ := pki.NewCSR(key, "ignored")
	resp, err := w.admin.CreateOperator(ctx, &wardv1.CreateOperatorRequest{Name: "carol",
		Role: wardv1.Role_ROLE_TECHNICIAN, Tenants: []string{"clinic-b", "clinic-a"},
		CsrDer: csr})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(resp.Operator.Tenants, []string{"clinic-a", "clinic-b"}) ||
		resp.Operator.Role != wardv1.Role_ROLE_TECHNICIAN || resp.Operator.CreatedBy != "admin" {
		t.Errorf("operator = %v", resp.Operator)
	}
	leaf, err := x509.ParseCertificate(resp.CertificateChain[0])
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := identity.FromCertificate(leaf); id != identity.Operator(adminapitest.TrustDomain,
		"carol") {
		t.Errorf("certificate names %v", id)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < 89*24*time.Hour || life > 91*24*time.Hour {
		t.Errorf("lifetime %v, want 90 days", life)
	}
	if len(resp.CaCertificates) != 1 {
		t.Errorf("trust bundle has %d certificates", len(resp.CaCertificates))
	}

	keyPEM, _ := pki.EncodeKey(key)
	pair, err := tls.X509KeyPair(pki.EncodeCerts(resp.CertificateChain...), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	carol := adminapitest.Admin(w.e.Dial(&adminapitest.Cred{TLS: pair}, nil))
	if _, err := carol.CreateToken(ctx, &wardv1.CreateTokenRequest{Tenant: "clinic-b"}); err != nil {
		t.Errorf("carol cannot use her certificate: %v", err)
	}

	_, err = w.admin.CreateOperator(ctx, operatorRequest(t, "carol", wardv1.Role_ROLE_AUDITOR))
	wantCode(t, "existing name", err, codes.AlreadyExists)
	_, err = w.admin.RevokeOperator(ctx, &wardv1.RevokeOperatorRequest{Name: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.admin.CreateOperator(ctx, operatorRequest(t, "carol", wardv1.Role_ROLE_ADMIN))
	wantCode(t, "revoked name reused", err, codes.AlreadyExists)
}

func TestMalformedInput(t *testing.T) {
	w := newWorld(t)
	ctx := ctxOf(t)
	good := operatorRequest(t, "dave", wardv1.Role_ROLE_AUDITOR)
	withCSR := func(csr []byte) *wardv1.CreateOperatorRequest {
		return &wardv1.CreateOperatorRequest{Name: "dave", Role: wardv1.Role_ROLE_AUDITOR,
			CsrDer: csr}
	}
	tests := []struct {
		name  string
		call  func() error
		code  codes.Code
		field string
	}{
		{"bad tenant id", func() error {
			_, err := w.admin.CreateTenant(ctx, &wardv1.CreateTenantRequest{Id: "Clinic A"})
			return err
		}, codes.InvalidArgument, "id"},
		{"long display name", func() error {
			_, err := w.admin.CreateTenant(ctx, &wardv1.CreateTenantRequest{Id: "ok",
				DisplayName: strings.Repeat("x", 201)})
			return err
		}, codes.InvalidArgument, "display_name"},
		{"token for bad tenant id", func() error {
			_, err := w.admin.CreateToken(ctx, &wardv1.CreateTokenRequest{Tenant: "a:b"})
			return err
		}, codes.InvalidArgument, "tenant"},
		{"token for unknown tenant", func() error {
			_, err := w.admin.CreateToken(ctx, &wardv1.CreateTokenRequest{Tenant: "nope"})
			return err
		}, codes.NotFound, "nope"},
		{"bad cidr", func() error {
			_, err := w.admin.CreateToken(ctx, &wardv1.CreateTokenRequest{Tenant: "clinic-a",
				Cidr: "10.0.0.0/33"})
			return err
		}, codes.InvalidArgument, "cidr"},
		{"ttl too long", func() error {
			_, err := w.admin.CreateToken(ctx, &wardv1.CreateTokenRequest{Tenant: "clinic-a",
				Ttl: durationpb.New(31 * 24 * time.Hour)})
			return err
		}, codes.InvalidArgument, "ttl"},
		{"negative ttl", func() error {
			_, err := w.admin.CreateToken(ctx, &wardv1.CreateTokenRequest{Tenant: "clinic-a",
				Ttl: durationpb.New(-time.Hour)})
			return err
		}, codes.InvalidArgument, "ttl"},
		{"too many uses", func() error {
			_, err := w.admin.CreateToken(ctx, &wardv1.CreateTokenRequest{Tenant: "clinic-a",
				Uses: 1001})
			return err
		}, codes.InvalidArgument, "uses"},
		{"tier 4", func() error {
			_, err := w.admin.CreateToken(ctx, &wardv1.CreateTokenRequest{Tenant: "clinic-a",
				Tier: 4})
			return err
		}, codes.InvalidArgument, "tier"},
		{"zero role", func() error {
			_, err := w.admin.CreateOperator(ctx, operatorRequest(t, "dave",
				wardv1.Role_ROLE_UNSPECIFIED))
			return err
		}, codes.InvalidArgument, "role"},
		{"technician without tenants", func() error {
			_, err := w.admin.CreateOperator(ctx, operatorRequest(t, "dave",
				wardv1.Role_ROLE_TECHNICIAN))
			return err
		}, codes.InvalidArgument, "tenants"},
		{"operator in unknown tenant", func() error {
			_, err := w.admin.CreateOperator(ctx, operatorRequest(t, "dave",
				wardv1.Role_ROLE_TECHNICIAN, "nope"))
			return err
		}, codes.NotFound, "nope"},
		{"garbage csr", func() error {
			_, err := w.admin.CreateOperator(ctx, withCSR([]byte("garbage")))
			return err
		}, codes.InvalidArgument, "csr_der"},
		{"empty csr", func() error {
			_, err := w.admin.CreateOperator(ctx, withCSR(nil))
			return err
		}, codes.InvalidArgument, "csr_der"},
		{"bad operator name", func() error {
			req := withCSR(good.CsrDer)
			req.Name = "Dave Smith"
			_, err := w.admin.CreateOperator(ctx, req)
			return err
		}, codes.InvalidArgument, "name"},
		{"bad agent id", func() error {
			_, err := w.admin.GetAgent(ctx, &wardv1.GetAgentRequest{Id: ""})
			return err
		}, codes.InvalidArgument, "id"},
		{"unknown agent", func() error {
			_, err := w.admin.RevokeAgent(ctx, &wardv1.RevokeAgentRequest{Id: "ghost"})
			return err
		}, codes.NotFound, "ghost"},
		{"unknown token", func() error {
			_, err := w.admin.RevokeToken(ctx, &wardv1.RevokeTokenRequest{Id: "ghost"})
			return err
		}, codes.NotFound, "ghost"},
		{"token with an unknown role", func() error {
			_, err := w.admin.CreateToken(ctx, &wardv1.CreateTokenRequest{Tenant: "clinic-a",
				Roles: []string{"host", "scanner"}})
			return err
		}, codes.InvalidArgument, `"scanner"`},
		{"agent given an unknown role", func() error {
			_, err := w.admin.SetAgentRoles(ctx, &wardv1.SetAgentRolesRequest{Id: "agent-a",
				Roles: []string{"root"}})
			return err
		}, codes.InvalidArgument, `"root"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if status.Code(err) != tt.code {
				t.Fatalf("err = %v, want %v", err, tt.code)
			}
			if !strings.Contains(status.Convert(err).Message(), tt.field) {
				t.Errorf("message %q does not name %q", status.Convert(err).Message(), tt.field)
			}
		})
	}
	if _, err := w.e.Store.GetOperator(ctx, "dave"); err == nil {
		t.Error("a refused CreateOperator stored the operator")
	}
}
