package authz

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
	"github.com/wardsec/ward/pkg/pki"
)

// peerCtx returns a server context whose peer presented (and had verified) leaf.
func peerCtx(leaf *x509.Certificate) context.Context {
	state := tls.ConnectionState{}
	if leaf != nil {
		state.VerifiedChains = [][]*x509.Certificate{{leaf}}
	}
	return peer.NewContext(context.Background(), &peer.Peer{
		Addr:     &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1},
		AuthInfo: credentials.TLSInfo{State: state},
	})
}

// TestAuthorizeMethodClasses covers the rules that a real server cannot reach: methods
// of registered services outside every class, and identities of another trust domain.
func TestAuthorizeMethodClasses(t *testing.T) {
	dir := t.TempDir()
	authority, err := ca.Create(dir, "msp.example")
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.Create(t.TempDir(), "other.example")
	if err != nil {
		t.Fatal(err)
	}
	st, err := badger.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.CreateOperator(ctx, store.Operator{Name: "admin", Role: store.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	admin := operatorCert(t, authority, "admin")
	foreignAdmin := operatorCert(t, other, "admin")

	var reasons []string
	a := New(st, "msp.example", nil, func(_, r string) { reasons = append(reasons, r) })
	tests := []struct {
		name   string
		leaf   *x509.Certificate
		method string
		want   codes.Code
	}{
		{"operator on admin api", admin, "/ward.v1.AdminService/ListTenants", codes.OK},
		{"operator on evidence api", admin, "/ward.v1.EvidenceService/Export", codes.OK},
		{"operator on an unlisted service", admin, "/ward.v1.UnknownService/Do",
			codes.PermissionDenied},
		{"operator on a prefix look-alike", admin, "/ward.v1.AdminServiceX/ListTenants",
			codes.PermissionDenied},
		{"foreign trust domain", foreignAdmin, "/ward.v1.AdminService/ListTenants",
			codes.PermissionDenied},
		{"no certificate, open method", nil, "/grpc.health.v1.Health/Check", codes.OK},
		{"no certificate, other method", nil, "/ward.v1.EvidenceService/Export",
			codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.Authorize(peerCtx(tt.leaf), tt.method)
			if status.Code(err) != tt.want {
				t.Fatalf("Authorize = %v, want %v", err, tt.want)
			}
			if err != nil {
				if s := status.Convert(err).Message(); s != "permission denied" &&
					s != "a valid client certificate is required" {
					t.Errorf("denial message %q is not generic", s)
				}
				return
			}
			if c, ok := CallerFrom(got); tt.leaf != nil && (!ok || c.Operator == nil ||
				c.Operator.Name != "admin") {
				t.Errorf("caller = %+v, %v", c, ok)
			}
		})
	}
	if err := a.VerifyConnection(tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{
		{foreignAdmin}}}); err == nil {
		t.Error("VerifyConnection accepted another trust domain")
	}
	if len(reasons) != 5 {
		t.Errorf("onDenied calls: %q", reasons)
	}
}

func operatorCert(t *testing.T, c *ca.CA, name string) *x509.Certificate {
	t.Helper()
	key, _ := pki.NewKey()
	csr, _ := pki.NewCSR(key, name)
	_, leaf, err := c.SignOperator(csr, name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}
