package adminapi_test

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/wardsec/ward/controller/internal/adminapi/adminapitest"
	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// TestTokenRoles checks that a token carries the roles asked for, host always among them,
// host alone by default, and that ListTokens shows them.
func TestTokenRoles(t *testing.T) {
	w := newWorld(t)
	ctx := ctxOf(t)
	tests := []struct {
		name  string
		roles []string
		want  []string
	}{
		{"default", nil, []string{"host"}},
		{"host", []string{"host"}, []string{"host"}},
		{"collector", []string{"collector"}, []string{"host", "collector"}},
		{"both, repeated", []string{"collector", "host", "collector"},
			[]string{"host", "collector"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := w.tech.CreateToken(ctx, &wardv1.CreateTokenRequest{
				Tenant: "clinic-a", Roles: tt.roles})
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.GetToken().GetRoles(); !slices.Equal(got, tt.want) {
				t.Errorf("created token roles = %q, want %q", got, tt.want)
			}
			list, err := w.audA.ListTokens(ctx, &wardv1.ListTokensRequest{Tenant: "clinic-a"})
			if err != nil {
				t.Fatal(err)
			}
			for _, tok := range list.GetTokens() {
				if tok.GetId() == resp.GetToken().GetId() &&
					!slices.Equal(tok.GetRoles(), tt.want) {
					t.Errorf("listed token roles = %q, want %q", tok.GetRoles(), tt.want)
				}
			}
		})
	}
}

// TestSetAgentRoles lets only admins and technicians of the agent's tenant change its
// roles, records each change with its operator, and ends the agent's stream when the
// roles changed.
func TestSetAgentRoles(t *testing.T) {
	w := newWorld(t)
	ctx := ctxOf(t)
	w.e.Tenant("clinic-c")
	techB := w.e.Operator("tech-b", store.RoleTechnician, "clinic-b")
	other := adminapitest.Admin(w.e.Dial(&techB, nil))
	collector := &wardv1.SetAgentRolesRequest{Id: "agent-a",
		Roles: []string{"host", "collector"}}

	// An agent enrolled before roles were stored is host-only.
	got, err := w.admin.GetAgent(ctx, &wardv1.GetAgentRequest{Id: "agent-a"})
	if err != nil || !slices.Equal(got.GetAgent().GetRoles(), []string{"host"}) {
		t.Fatalf("roles before = %v, %v; want [host]", got.GetAgent().GetRoles(), err)
	}

	refused := []struct {
		name   string
		client wardv1.AdminServiceClient
		code   codes.Code
	}{
		{"technician of another tenant", other, codes.NotFound},
		{"auditor of the tenant", w.audA, codes.PermissionDenied},
		{"auditor of every tenant", w.audAll, codes.PermissionDenied},
	}
	for _, tt := range refused {
		_, err := tt.client.SetAgentRoles(ctx, collector)
		wantCode(t, tt.name, err, tt.code)
	}
	if a, _ := w.e.Store.GetAgent(ctx, "agent-a"); len(a.Roles) != 0 {
		t.Fatalf("refused calls stored roles %q", a.Roles)
	}
	if n := len(w.e.Evidence.OfType(evidence.TypeAgentRolesSet)); n != 0 {
		t.Fatalf("refused calls recorded %d changes", n)
	}

	resp, err := w.admin.SetAgentRoles(ctx, collector)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"host", "collector"}
	if !slices.Equal(resp.GetAgent().GetRoles(), want) {
		t.Errorf("roles after = %q, want %q", resp.GetAgent().GetRoles(), want)
	}
	if a, _ := w.e.Store.GetAgent(ctx, "agent-a"); !slices.Equal(a.Roles, want) {
		t.Errorf("stored roles = %q, want %q", a.Roles, want)
	}
	recs := w.e.Evidence.OfType(evidence.TypeAgentRolesSet)
	if len(recs) != 1 || recs[0].Tenant != "clinic-a" || recs[0].Subject != "agent-a" ||
		recs[0].Actor != (evidence.Actor{Kind: evidence.ActorOperator, ID: "admin"}) {
		t.Fatalf("evidence = %+v, want one agent.roles_set by admin for agent-a", recs)
	}
	if !slices.Contains(w.e.Closed.List(), "reset agent-a") {
		t.Errorf("streams closed = %q, want agent-a reset", w.e.Closed.List())
	}

	// A technician of the tenant may narrow them again.
	_, err = w.tech.SetAgentRoles(ctx, &wardv1.SetAgentRolesRequest{Id: "agent-a",
		Roles: []string{"host"}})
	wantCode(t, "technician of the tenant", err, codes.OK)
	if a, _ := w.e.Store.GetAgent(ctx, "agent-a"); !slices.Equal(a.Roles, []string{"host"}) {
		t.Errorf("stored roles = %q, want [host]", a.Roles)
	}
	if n := len(w.e.Evidence.OfType(evidence.TypeAgentRolesSet)); n != 2 {
		t.Errorf("recorded %d changes, want 2", n)
	}
}

// TestSetAgentRolesNeedsALiveCertificate refuses an expired operator certificate (at the
// handshake) and a revoked operator (on a connection opened before its revocation).
func TestSetAgentRolesNeedsALiveCertificate(t *testing.T) {
	w := newWorld(t)
	ctx := ctxOf(t)
	req := &wardv1.SetAgentRolesRequest{Id: "agent-a", Roles: []string{"collector"}}

	short := w.e.OperatorCert("admin", time.Second)
	expired := adminapitest.Admin(w.e.Dial(&short, nil))
	time.Sleep(1500 * time.Millisecond)
	_, err := expired.SetAgentRoles(ctx, req)
	if err == nil {
		t.Error("expired operator certificate: roles changed")
	}

	tech2 := w.e.Operator("tech2", store.RoleTechnician, "clinic-a")
	revoked := adminapitest.Admin(w.e.Dial(&tech2, nil))
	_, err = revoked.ListAgents(ctx, &wardv1.ListAgentsRequest{}) // opens the connection
	wantCode(t, "technician before revocation", err, codes.OK)
	if _, err := w.admin.RevokeOperator(ctx, &wardv1.RevokeOperatorRequest{
		Name: "tech2"}); err != nil {
		t.Fatal(err)
	}
	_, err = revoked.SetAgentRoles(ctx, req)
	wantCode(t, "revoked operator", err, codes.PermissionDenied)

	if a, _ := w.e.Store.GetAgent(ctx, "agent-a"); len(a.Roles) != 0 {
		t.Errorf("stored roles = %q, want none", a.Roles)
	}
	if n := len(w.e.Evidence.OfType(evidence.TypeAgentRolesSet)); n != 0 {
		t.Errorf("recorded %d changes, want none", n)
	}
}
