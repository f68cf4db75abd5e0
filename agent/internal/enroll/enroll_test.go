package enroll

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/agent/internal/logtest"
	"github.com/wardsec/ward/agent/internal/state"
	"github.com/wardsec/ward/agent/internal/testca"
	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const goodToken = "wtk_s3cr3t-enrollment-token-value"

// fakeEnrollment is an EnrollmentService that accepts goodToken once.
type fakeEnrollment struct {
	wardv1.UnimplementedEnrollmentServiceServer
	ca     *testca.CA
	policy []byte

	mu    sync.Mutex
	used  bool
	peers []bool // whether each caller presented a client certificate
	host  *wardv1.HostFacts
}

func (f *fakeEnrollment) Enroll(ctx context.Context,
	req *wardv1.EnrollRequest) (*wardv1.EnrollResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()

	if req.GetToken() == "flood" {
		return nil, status.Error(codes.ResourceExhausted, "slow down")
	}
	if req.GetToken() != goodToken || f.used {
		return nil, status.Error(codes.PermissionDenied, "enrollment refused")
	}
	f.used = true
	f.host = req.GetHost()

	id := identity.Agent(f.ca.Domain, "clinic-a", "agent-7")
	der, err := f.ca.SignCSR(req.GetCsrDer(), id, time.Hour)
	if err != nil {
		return nil, status.Error(codes.PermissionDenied, "enrollment refused")
	}
	return &wardv1.EnrollResponse{
		AgentId: "agent-7", Tenant: "clinic-a", TrustDomain: f.ca.Domain,
		CertificateChain: [][]byte{der}, CaCertificates: [][]byte{f.ca.Cert.Raw},
		PolicyPublicKey: f.policy,
	}, nil
}

type env struct {
	addr   string
	caFile string
	fake   *fakeEnrollment
}

func start(t *testing.T) env {
	t.Helper()
	ca := testca.New(t, "msp.example")
	policy, _ := pki.NewKey()
	policyDER, _ := x509.MarshalPKIXPublicKey(&policy.PublicKey)
	fake := &fakeEnrollment{ca: ca, policy: policyDER}

	serverCert := ca.KeyPair(t, identity.Controller(ca.Domain, "c1"), time.Hour)
	creds := credentials.NewTLS(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequestClientCert,
	})
	srv := grpc.NewServer(grpc.Creds(creds))
	wardv1.RegisterEnrollmentServiceServer(srv, fake)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pki.EncodeCerts(ca.Cert.Raw), 0o644); err != nil {
		t.Fatal(err)
	}
	return env{addr: lis.Addr().String(), caFile: caFile, fake: fake}
}

func (e env) config(t *testing.T, token string) Config {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	return Config{
		Controller: e.addr, TokenFile: tokenFile, CAFile: e.caFile,
		Dir: state.Dir(filepath.Join(t.TempDir(), "state")), Log: logtest.New(t),
	}
}

func TestEnrollWritesAUsableStateDirectory(t *testing.T) {
	e := start(t)
	cfg := e.config(t, "\n  "+goodToken+"\n\n")
	log, rec := logtest.NewRecorder(t)
	cfg.Log = log

	info, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if info.AgentID != "agent-7" || info.Tenant != "clinic-a" || info.Controller != e.addr {
		t.Errorf("info = %+v", info)
	}

	st, err := cfg.Dir.Load()
	if err != nil {
		t.Fatalf("the written state does not load: %v", err)
	}
	if st.Info.ID() != identity.Agent("msp.example", "clinic-a", "agent-7") {
		t.Errorf("loaded identity %v", st.Info.ID())
	}
	if fi, _ := os.Stat(filepath.Join(string(cfg.Dir), state.KeyFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("key.pem mode %o", fi.Mode().Perm())
	}
	if e.fake.host.GetHostname() == "" || e.fake.host.GetRoles()[0] != "host" {
		t.Errorf("host facts sent: %v", e.fake.host)
	}
	if rec.Contains(goodToken) {
		t.Error("the token appears in the log")
	}
}

func TestEnrollRefusals(t *testing.T) {
	e := start(t)

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"wrong token", "wtk_guess", ErrRefused},
		{"rate limited", "flood", ErrRateLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := e.config(t, tt.token)
			_, err := Run(context.Background(), cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Run = %v, want %v", err, tt.want)
			}
			if ok, _ := cfg.Dir.Enrolled(); ok {
				t.Error("a refused enrollment left an enrollment behind")
			}
		})
	}

	t.Run("empty token file", func(t *testing.T) {
		cfg := e.config(t, " \n\t")
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Fatal("an empty token file was accepted")
		}
	})
	t.Run("untrusted controller", func(t *testing.T) {
		cfg := e.config(t, goodToken)
		other := testca.New(t, "msp.example")
		cfg.CAFile = filepath.Join(t.TempDir(), "other.pem")
		os.WriteFile(cfg.CAFile, pki.EncodeCerts(other.Cert.Raw), 0o644)
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Fatal("enrolled with a controller outside the CA bundle")
		}
	})
}

func TestEnrollRefusesToReplaceAnIdentityWithoutForce(t *testing.T) {
	e := start(t)
	cfg := e.config(t, goodToken)
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	spoolMarker := filepath.Join(cfg.Dir.SpoolPath(), "marker")
	os.MkdirAll(cfg.Dir.SpoolPath(), 0o700)
	os.WriteFile(spoolMarker, nil, 0o600)

	e.fake.used = false
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrAlreadyEnrolled) {
		t.Fatalf("second Run = %v, want ErrAlreadyEnrolled", err)
	}

	cfg.Force = true
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("Run with Force: %v", err)
	}
	if _, err := os.Stat(spoolMarker); !os.IsNotExist(err) {
		t.Error("the old identity's spool survived a forced re-enrollment")
	}
}
