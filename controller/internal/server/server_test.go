package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/install"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*defaultPolicy[...]).processItems"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*Cache[...]).processItems"),
	)
}

const trustDomain = "msp.example"

// testWriter copies log lines to t.Log until the test ends and keeps them for checks.
type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
	all  bytes.Buffer
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (w *testWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// env is a real controller (ward-controller init, then serve) on loopback.
type env struct {
	t       *testing.T
	dir     string
	srv     *Server
	logs    *testWriter
	roots   *x509.CertPool
	admin   *tls.Certificate
	stop    context.CancelFunc
	stopped chan error
}

func newEnv(t *testing.T, cfg func(*Config)) *env {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	logs := &testWriter{t: t}
	t.Cleanup(func() { logs.mu.Lock(); logs.done = true; logs.mu.Unlock() })
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	if err := install.Init(context.Background(), install.Options{DataDir: dir,
		TrustDomain: trustDomain, Log: log}); err != nil {
		t.Fatal(err)
	}
	c := Config{DataDir: dir, Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0",
		RevocationScan: 500 * time.Millisecond, Log: log}
	if cfg != nil {
		cfg(&c)
	}
	srv, err := New(c)
	if err != nil {
		t.Fatal(err)
	}

	roots, err := pki.LoadPool(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pki.LoadKeyPair(filepath.Join(dir, "operators", "admin", "cert.pem"),
		filepath.Join(dir, "operators", "admin", "key.pem"))
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	e := &env{t: t, dir: dir, srv: srv, logs: logs, roots: roots, admin: &admin,
		stop: cancel, stopped: make(chan error, 1)}
	go func() { e.stopped <- srv.Run(ctx) }()
	t.Cleanup(func() { e.shutdown() })
	return e
}

// shutdown stops the controller and returns Run's result; later calls return nil.
func (e *env) shutdown() error {
	e.stop()
	select {
	case err, ok := <-e.stopped:
		if ok {
			close(e.stopped)
		}
		return err
	case <-time.After(20 * time.Second):
		e.t.Fatal("Run did not return within 20 s of cancellation")
		return nil
	}
}

// dial connects to the controller with cert as client certificate (nil: none).
func (e *env) dial(cert *tls.Certificate) *grpc.ClientConn {
	var get func() (*tls.Certificate, error)
	if cert != nil {
		get = func() (*tls.Certificate, error) { return cert, nil }
	}
	return e.dialTLS(pki.ClientConfig(e.roots, "localhost", get))
}

func (e *env) dialTLS(cfg *tls.Config) *grpc.ClientConn {
	conn, err := grpc.NewClient(e.srv.Addr().String(),
		grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (e *env) adminClient() wardv1.AdminServiceClient {
	return wardv1.NewAdminServiceClient(e.dial(e.admin))
}

// enrolled is an agent enrolled through the real EnrollmentService.
type enrolled struct {
	id   string
	cert *tls.Certificate
}

// enroll creates the tenant if needed, a token through the admin API, and enrolls.
func (e *env) enroll(tenant string) enrolled {
	e.t.Helper()
	return e.enrollAs(tenant)
}

// enrollAs is enroll with a token for roles (none: the default, host).
func (e *env) enrollAs(tenant string, roles ...string) enrolled {
	t := e.t
	t.Helper()
	admin := e.adminClient()
	_, err := admin.CreateTenant(ctxT(t), &wardv1.CreateTenantRequest{Id: tenant})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		t.Fatalf("CreateTenant: %v", err)
	}
	tok, err := admin.CreateToken(ctxT(t), &wardv1.CreateTokenRequest{Tenant: tenant,
		Ttl: durationpb.New(time.Hour), Roles: roles})
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}

	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "host")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := wardv1.NewEnrollmentServiceClient(e.dial(nil)).Enroll(ctxT(t),
		&wardv1.EnrollRequest{Token: tok.GetSecret(), CsrDer: csr,
			Host: &wardv1.HostFacts{Hostname: "srv-01"}})
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	if strings.Contains(e.logs.String(), tok.GetSecret()) {
		t.Fatal("the token secret is in the log")
	}
	return enrolled{id: resp.GetAgentId(),
		cert: &tls.Certificate{Certificate: resp.GetCertificateChain(), PrivateKey: key}}
}

// connect opens a Connect stream and completes hello/welcome.
func (e *env) connect(a enrolled) (wardv1.AgentService_ConnectClient, context.CancelFunc) {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := wardv1.NewAgentServiceClient(e.dial(a.cert)).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&wardv1.ConnectRequest{Body: &wardv1.ConnectRequest_Hello{
		Hello: &wardv1.Hello{Host: &wardv1.HostFacts{Hostname: "srv-01"}}}}); err != nil {
		t.Fatal(err)
	}
	m, err := recvTimeout(s)
	if err != nil || m.GetWelcome().GetAgentId() != a.id {
		t.Fatalf("welcome = %v, %v", m, err)
	}
	return s, cancel
}

func recvTimeout(s wardv1.AgentService_ConnectClient) (*wardv1.ConnectResponse, error) {
	type result struct {
		m   *wardv1.ConnectResponse
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The controller pushes the tenant's baseline after the Welcome to an agent that
		// reports none, as these test agents do, and resends unfinished commands; the
		// tests wait for what follows those pushes.
		m, err := s.Recv()
		for err == nil && (m.GetBaselineUpdate() != nil || m.GetCommand() != nil) {
			m, err = s.Recv()
		}
		ch <- result{m, err}
	}()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-time.After(6 * time.Second):
		return nil, status.Error(codes.DeadlineExceeded, "test: no response within 6 s")
	}
}

func heartbeat(seq uint64) *wardv1.ConnectRequest {
	return &wardv1.ConnectRequest{Seq: seq,
		Body: &wardv1.ConnectRequest_Heartbeat{Heartbeat: &wardv1.Heartbeat{}}}
}

func (e *env) getAgent(id string) *wardv1.Agent {
	e.t.Helper()
	resp, err := e.adminClient().GetAgent(ctxT(e.t), &wardv1.GetAgentRequest{Id: id})
	if err != nil {
		e.t.Fatalf("GetAgent: %v", err)
	}
	return resp.GetAgent()
}

func (e *env) httpGet(path string) (int, string) {
	e.t.Helper()
	resp, err := http.Get("http://" + e.srv.MetricsAddr().String() + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestEnrollConnectAndAck(t *testing.T) {
	e := newEnv(t, nil)
	a := e.enroll("clinic-a")
	s, _ := e.connect(a)

	if err := s.Send(heartbeat(1)); err != nil {
		t.Fatal(err)
	}
	m, err := recvTimeout(s)
	if err != nil || m.GetAck().GetUpToSeq() != 1 {
		t.Fatalf("ack = %v, %v", m, err)
	}
	got := e.getAgent(a.id)
	if !got.GetOnline() || got.GetAckedSeq() != 1 || got.GetTenant() != "clinic-a" {
		t.Fatalf("agent = %v", got)
	}
}

func TestHandshakeAndCallRefusals(t *testing.T) {
	e := newEnv(t, nil)
	a := e.enroll("clinic-a")
	revoked := e.enroll("clinic-a")
	if _, err := e.adminClient().RevokeAgent(ctxT(t),
		&wardv1.RevokeAgentRequest{Id: revoked.id, Reason: "test"}); err != nil {
		t.Fatal(err)
	}

	// A certificate from another CA, for the same trust domain and names.
	otherDir := t.TempDir()
	other, err := ca.Create(otherDir, trustDomain)
	if err != nil {
		t.Fatal(err)
	}
	foreign := signAgent(t, other, "clinic-a", a.id, time.Hour)

	// An expired certificate from the right CA.
	authority, err := ca.Load(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	expired := signAgent(t, authority, "clinic-a", a.id, time.Second)
	time.Sleep(1500 * time.Millisecond)

	renew := func(cert *tls.Certificate) error {
		_, err := wardv1.NewAgentServiceClient(e.dial(cert)).Renew(ctxT(t),
			&wardv1.RenewRequest{CsrDer: []byte("x")})
		return err
	}
	tests := []struct {
		name string
		call func() error
		code codes.Code
	}{
		{"no client certificate on AgentService", func() error { return renew(nil) },
			codes.Unauthenticated},
		{"certificate of another CA", func() error { return renew(foreign) },
			codes.Unavailable},
		{"expired agent certificate", func() error { return renew(expired) },
			codes.Unavailable},
		{"revoked agent", func() error { return renew(revoked.cert) }, codes.Unavailable},
		{"agent certificate on AdminService", func() error {
			_, err := wardv1.NewAdminServiceClient(e.dial(a.cert)).ListTenants(ctxT(t),
				&wardv1.ListTenantsRequest{})
			return err
		}, codes.PermissionDenied},
		{"no certificate on AdminService", func() error {
			_, err := wardv1.NewAdminServiceClient(e.dial(nil)).ListTenants(ctxT(t),
				&wardv1.ListTenantsRequest{})
			return err
		}, codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); status.Code(err) != tt.code {
				t.Fatalf("call = %v, want %v", err, tt.code)
			}
		})
	}

	// The handshake refusal of the revoked agent is the controller's doing, and counted.
	if !strings.Contains(e.logs.String(), "handshake refused") {
		t.Fatal("no handshake refusal logged")
	}
	_, body := e.httpGet("/metrics")
	if !strings.Contains(body, `ward_authz_denied_total{method="tls-handshake"}`) {
		t.Fatal("handshake refusal not counted")
	}
}

func signAgent(t *testing.T, c *ca.CA, tenant, id string, ttl time.Duration) *tls.Certificate {
	t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, id)
	if err != nil {
		t.Fatal(err)
	}
	chain, _, err := c.SignAgent(csr, tenant, id, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key}
}

func TestRevokeAgentClosesLiveStream(t *testing.T) {
	e := newEnv(t, nil)
	a := e.enroll("clinic-a")
	s, _ := e.connect(a)

	start := time.Now()
	if _, err := e.adminClient().RevokeAgent(ctxT(t),
		&wardv1.RevokeAgentRequest{Id: a.id, Reason: "stolen"}); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := recvTimeout(s)
		if err == nil {
			continue
		}
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("stream ended with %v, want PermissionDenied", err)
		}
		break
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stream closed %v after revocation", d)
	}
}

func TestOfflineAfterMissedHeartbeatsAndOnlineAgain(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.HeartbeatInterval = 200 * time.Millisecond })
	a := e.enroll("clinic-a")
	s, _ := e.connect(a)
	if !e.getAgent(a.id).GetOnline() {
		t.Fatal("agent not online after hello")
	}

	// Silent on an open stream: offline after three intervals (600 ms), swept every 100 ms.
	deadline := time.Now().Add(3 * time.Second)
	for e.getAgent(a.id).GetOnline() {
		if time.Now().After(deadline) {
			t.Fatal("agent still online 3 s after its last message")
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := s.Send(heartbeat(1)); err != nil {
		t.Fatal(err)
	}
	if m, err := recvTimeout(s); err != nil || m.GetAck() == nil {
		t.Fatalf("ack = %v, %v", m, err)
	}
	if !e.getAgent(a.id).GetOnline() {
		t.Fatal("agent not online again after a heartbeat")
	}
	if n := strings.Count(e.logs.String(), `"msg":"agent offline"`); n != 1 {
		t.Fatalf(`"agent offline" logged %d times, want once`, n)
	}
}

func TestHTTPEndpoints(t *testing.T) {
	e := newEnv(t, nil)
	a := e.enroll("clinic-a")
	s, _ := e.connect(a)
	if err := s.Send(heartbeat(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := recvTimeout(s); err != nil {
		t.Fatal(err)
	}
	// A refused enrollment, for the refusal counter.
	_, err := wardv1.NewEnrollmentServiceClient(e.dial(nil)).Enroll(ctxT(t),
		&wardv1.EnrollRequest{Token: "wrong", CsrDer: mustCSR(t)})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Enroll with a wrong token = %v", err)
	}

	if code, body := e.httpGet("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d %s", code, body)
	}
	if code, body := e.httpGet("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	code, body := e.httpGet("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`ward_agents_connected{tenant="clinic-a"} 1`,
		`ward_agent_messages_total{type="heartbeat"} 1`,
		`ward_enrollments_total 1`,
		`ward_enrollment_refusals_total{reason="token"} 1`,
		`ward_store_latency_seconds_bucket{op="commit_messages"`, // streams commit in batches
		`go_goroutines`,
		`process_open_fds`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func mustCSR(t *testing.T) []byte {
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "x")
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func TestHealthAndReflection(t *testing.T) {
	e := newEnv(t, nil)

	resp, err := healthpb.NewHealthClient(e.dial(nil)).Check(ctxT(t),
		&healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health without a client certificate = %v, %v", resp, err)
	}

	// Reflection is for operators only.
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		ok   bool
	}{{"anonymous", nil, false}, {"admin", e.admin, true}} {
		t.Run(tc.name, func(t *testing.T) {
			services, err := listServices(t, e.dial(tc.cert))
			if tc.ok != (err == nil) {
				t.Fatalf("reflection = %v, %v", services, err)
			}
			if tc.ok && !strings.Contains(strings.Join(services, " "), "ward.v1.AgentService") {
				t.Fatalf("reflection lists %v", services)
			}
		})
	}
}

func TestGracefulShutdownWithOpenStream(t *testing.T) {
	e := newEnv(t, nil)
	a := e.enroll("clinic-a")
	s, _ := e.connect(a)

	start := time.Now()
	if err := e.shutdown(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v with an open agent stream", d)
	}
	_, err := recvTimeout(s)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("open stream ended with %v, want Unavailable", err)
	}
}

func TestRenewUnderLiveStream(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CertTTL = 2 * time.Hour })
	a := e.enroll("clinic-a")
	s, _ := e.connect(a)

	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "renew")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := wardv1.NewAgentServiceClient(e.dial(a.cert)).Renew(ctxT(t),
		&wardv1.RenewRequest{CsrDer: csr})
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	leaf, err := x509.ParseCertificate(resp.GetCertificateChain()[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := leaf.URIs[0].String(); !strings.HasSuffix(got, "/tenant/clinic-a/agent/"+a.id) {
		t.Fatalf("renewed certificate names %s", got)
	}
	if life := time.Until(leaf.NotAfter); life < 119*time.Minute || life > 2*time.Hour {
		t.Fatalf("renewed certificate lives %v, want --cert-ttl 2h", life)
	}

	// The stream survives, and the new certificate opens a new one.
	if err := s.Send(heartbeat(1)); err != nil {
		t.Fatal(err)
	}
	if m, err := recvTimeout(s); err != nil || m.GetAck().GetUpToSeq() != 1 {
		t.Fatalf("ack after renewal = %v, %v", m, err)
	}
	renewed := enrolled{id: a.id,
		cert: &tls.Certificate{Certificate: resp.GetCertificateChain(), PrivateKey: key}}
	e.connect(renewed)
	if got := e.getAgent(a.id).GetCertSerial(); got != leaf.SerialNumber.Text(16) {
		t.Fatalf("stored serial %s, want %s", got, leaf.SerialNumber.Text(16))
	}
}

func TestCommandResultOfAnotherAgentRefused(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.enroll("clinic-a")
	other := e.enroll("clinic-a")
	err := e.srv.db.CreateCommand(ctxT(t), store.Command{ID: "cmd-1", Tenant: "clinic-a",
		Agent: owner.id, IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour),
		Status: store.CommandSent})
	if err != nil {
		t.Fatal(err)
	}
	result := &wardv1.ConnectRequest{Seq: 1, Body: &wardv1.ConnectRequest_CommandResult{
		CommandResult: &wardv1.CommandResult{CommandId: "cmd-1",
			Status: wardv1.CommandStatus_COMMAND_STATUS_SUCCEEDED}}}

	s, _ := e.connect(other)
	if err := s.Send(result); err != nil {
		t.Fatal(err)
	}
	if _, err := recvTimeout(s); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("another agent's result = %v, want PermissionDenied", err)
	}
	if got := e.getAgent(other.id).GetAckedSeq(); got != 0 {
		t.Fatalf("refused result was stored: acked seq %d", got)
	}

	s, _ = e.connect(owner)
	if err := s.Send(result); err != nil {
		t.Fatal(err)
	}
	if m, err := recvTimeout(s); err != nil || m.GetAck().GetUpToSeq() != 1 {
		t.Fatalf("owner's result: %v, %v; want an ack", m, err)
	}
}
