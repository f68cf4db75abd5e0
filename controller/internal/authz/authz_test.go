package authz_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/controller/internal/adminapi/adminapitest"
	"github.com/wardsec/ward/controller/internal/store"
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

func code(err error) codes.Code { return status.Code(err) }

// callers names every kind of caller the rules distinguish.
func TestRules(t *testing.T) {
	e := adminapitest.New(t)
	e.Tenant("clinic-a")
	admin := e.AdminCred()
	agent := e.Agent("clinic-a", "agent-1")
	unknownAgent := e.AgentCert("clinic-a", "ghost")
	wrongTenant := e.AgentCert("clinic-b", "agent-1") // same id, another tenant

	admins := e.Dial(&admin, nil)
	agents := e.Dial(&agent, nil)
	anon := e.Dial(nil, nil)

	tests := []struct {
		name string
		conn *grpc.ClientConn
		call func(context.Context, *grpc.ClientConn) error
		want codes.Code
	}{
		{"health without certificate", anon, health, codes.OK},
		{"enrollment without certificate", anon, enroll, codes.Unimplemented},
		{"admin api without certificate", anon, listTenants, codes.Unauthenticated},
		{"agent api without certificate", anon, renew, codes.Unauthenticated},
		{"admin api as operator", admins, listTenants, codes.OK},
		{"agent api as operator", admins, renew, codes.PermissionDenied},
		{"agent api as agent", agents, renew, codes.Unimplemented},
		{"admin api as agent", agents, listTenants, codes.PermissionDenied},
		{"reflection as agent", agents, reflect, codes.PermissionDenied},
		// gRPC itself answers for services nobody registered, before any interceptor.
		{"unregistered service as operator", admins, unknownMethod, codes.Unimplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := code(tt.call(ctxOf(t), tt.conn)); got != tt.want {
				t.Fatalf("code = %v, want %v", got, tt.want)
			}
		})
	}

	// Unknown agents are refused at the handshake (VerifyConnection).
	for name, c := range map[string]adminapitest.Cred{"unknown agent": unknownAgent,
		"agent in wrong tenant": wrongTenant} {
		t.Run(name, func(t *testing.T) {
			err := renew(ctxOf(t), e.Dial(&c, nil))
			if err == nil || code(err) == codes.Unimplemented {
				t.Fatalf("renew = %v, want refusal", err)
			}
		})
	}
	denied := strings.Join(e.Denied.List(), "\n")
	for _, reason := range []string{"no verified client certificate", "unknown agent",
		"agent belongs to another tenant", "agent identity not allowed"} {
		if !strings.Contains(denied, reason) {
			t.Errorf("onDenied never saw %q; saw:\n%s", reason, denied)
		}
	}
}

// TestRevocationTakesEffect checks both layers: an open connection is refused per call,
// and a new handshake is refused.
func TestRevocationTakesEffect(t *testing.T) {
	e := adminapitest.New(t)
	e.Tenant("clinic-a")
	bob := e.Operator("bob", store.RoleAuditor)
	agent := e.Agent("clinic-a", "agent-1")
	bobConn, agentConn := e.Dial(&bob, nil), e.Dial(&agent, nil)
	if err := listTenants(ctxOf(t), bobConn); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	if err := renew(ctxOf(t), agentConn); code(err) != codes.Unimplemented {
		t.Fatalf("agent before revocation: %v", err)
	}

	ctx := ctxOf(t)
	_, err := e.Store.UpdateOperator(ctx, "bob", func(o *store.Operator) error {
		o.Revoked = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Store.UpdateAgent(ctx, "agent-1", func(a *store.Agent) error {
		a.Revoked = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	if err := listTenants(ctx, bobConn); code(err) != codes.PermissionDenied {
		t.Errorf("revoked operator on open connection: %v, want PermissionDenied", err)
	}
	if err := renew(ctx, agentConn); code(err) != codes.PermissionDenied {
		t.Errorf("revoked agent on open connection: %v, want PermissionDenied", err)
	}
	if err := listTenants(ctx, e.Dial(&bob, nil)); err == nil {
		t.Error("revoked operator completed a new handshake and call")
	}
	denied := e.Denied.List()
	if !slices.ContainsFunc(denied, func(s string) bool {
		return strings.HasPrefix(s, "tls-handshake operator revoked")
	}) {
		t.Errorf("handshake refusal not reported: %v", denied)
	}
}

func health(ctx context.Context, c *grpc.ClientConn) error {
	_, err := healthpb.NewHealthClient(c).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func enroll(ctx context.Context, c *grpc.ClientConn) error {
	// The test server does not register EnrollmentService: passing authz yields
	// Unimplemented from gRPC itself.
	_, err := wardv1.NewEnrollmentServiceClient(c).Enroll(ctx, &wardv1.EnrollRequest{})
	return err
}

func listTenants(ctx context.Context, c *grpc.ClientConn) error {
	_, err := wardv1.NewAdminServiceClient(c).ListTenants(ctx, &wardv1.ListTenantsRequest{})
	return err
}

func renew(ctx context.Context, c *grpc.ClientConn) error {
	_, err := wardv1.NewAgentServiceClient(c).Renew(ctx, &wardv1.RenewRequest{})
	return err
}

func reflect(ctx context.Context, c *grpc.ClientConn) error {
	return c.Invoke(ctx, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
		&healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
}

func unknownMethod(ctx context.Context, c *grpc.ClientConn) error {
	return c.Invoke(ctx, "/ward.v1.SecretService/Steal",
		&healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
}
