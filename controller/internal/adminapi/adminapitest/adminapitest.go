// Package adminapitest runs a real controller admin endpoint for tests: an installation
// made by install.Init in a temporary directory, the Badger store, the authz interceptors
// (also at the handshake), the AdminService, the health service and reflection, served
// over mTLS on loopback. The AgentService is registered unimplemented, so that a call
// that passes authorisation answers Unimplemented.
package adminapitest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/wardsec/ward/controller/internal/adminapi"
	"github.com/wardsec/ward/controller/internal/authz"
	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/install"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// TrustDomain is the test installation's trust domain.
const TrustDomain = "msp.example"

// Env is a running admin endpoint. Its fields are read-only for tests.
type Env struct {
	T     testing.TB
	Dir   string // the data directory
	CA    *ca.CA
	Store store.Store
	Addr  string // host:port on 127.0.0.1
	// Closed records the agent ids the admin API asked to close streams of.
	Closed *Recorder
	// Denied records authz denial reasons as "method reason".
	Denied *Recorder
	// Evidence holds what the admin API recorded in the evidence logs.
	Evidence *Entries
	// Clock is the admin API's clock; tests may move it with SetNow.
	clockMu sync.Mutex
	now     time.Time
}

// Recorder is a concurrency-safe list of strings.
type Recorder struct {
	mu   sync.Mutex
	list []string
}

// Add appends s.
func (r *Recorder) Add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, s)
}

// List returns a copy of what was added.
func (r *Recorder) List() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.list...)
}

// CloseAgent implements adminapi.StreamCloser.
func (r *Recorder) CloseAgent(id string) { r.Add(id) }

// ResetAgent implements adminapi.StreamCloser: it adds "reset " and the id.
func (r *Recorder) ResetAgent(id string) { r.Add("reset " + id) }

// Entries is an evidence.Recorder that keeps what it is given. Safe for concurrent use.
type Entries struct {
	mu   sync.Mutex
	list []evidence.Entry
}

var _ evidence.Recorder = (*Entries)(nil)

// Record implements evidence.Recorder.
func (r *Entries) Record(_ context.Context, e evidence.Entry) (evidence.Receipt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, e)
	return evidence.Receipt{}, nil
}

// OfType returns the recorded entries of type typ, oldest first.
func (r *Entries) OfType(typ string) []evidence.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []evidence.Entry
	for _, e := range r.list {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// Log returns a logger writing to t.Log until the test ends.
func Log(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(p))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
}

// New installs and serves a controller admin endpoint until the test ends.
func New(t testing.TB) *Env {
	t.Helper()
	log := Log(t)
	dir := filepath.Join(t.TempDir(), "ward")
	err := install.Init(context.Background(), install.Options{DataDir: dir,
		TrustDomain: TrustDomain, Log: log})
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	authority, err := ca.Load(dir)
	if err != nil {
		t.Fatalf("load ca: %v", err)
	}
	st, err := badger.Open(install.PathsOf(dir).DB, log)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	e := &Env{T: t, Dir: dir, CA: authority, Store: st, Closed: &Recorder{},
		Denied: &Recorder{}, Evidence: &Entries{}, now: time.Now()}

	az := authz.New(st, TrustDomain, log, func(method, reason string) {
		e.Denied.Add(method + " " + reason)
	})
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(e.serverTLS(az))),
		grpc.ChainUnaryInterceptor(az.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(az.StreamInterceptor()),
	)
	wardv1.RegisterAdminServiceServer(srv, adminapi.New(adminapi.Config{Store: st,
		CA: authority, Log: log, Streams: e.Closed, Clock: e.Now,
		Recorder: e.Evidence}))
	wardv1.RegisterAgentServiceServer(srv, wardv1.UnimplementedAgentServiceServer{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	reflection.Register(srv)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.Addr = lis.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
		st.Close()
	})
	return e
}

// Now is the admin API's clock.
func (e *Env) Now() time.Time {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	return e.now
}

// SetNow sets the admin API's clock.
func (e *Env) SetNow(t time.Time) {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	e.now = t
}

func (e *Env) serverTLS(az *authz.Authorizer) *tls.Config {
	p := install.PathsOf(e.Dir)
	pair, err := pki.LoadKeyPair(p.ControllerCert, p.ControllerKey)
	if err != nil {
		e.T.Fatal(err)
	}
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		Certificates:     []tls.Certificate{pair},
		ClientAuth:       tls.VerifyClientCertIfGiven,
		ClientCAs:        e.CA.Roots(),
		VerifyConnection: az.VerifyConnection,
	}
}

// Cred is a client certificate and key, in memory and as PEM.
type Cred struct {
	TLS     tls.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// AdminCred returns the credentials install.Init wrote for "admin".
func (e *Env) AdminCred() Cred {
	dir := install.PathsOf(e.Dir).AdminDir
	return e.load(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
}

func (e *Env) load(certPath, keyPath string) Cred {
	pair, err := pki.LoadKeyPair(certPath, keyPath)
	if err != nil {
		e.T.Fatal(err)
	}
	return Cred{TLS: pair, CertPEM: mustRead(e.T, certPath), KeyPEM: mustRead(e.T, keyPath)}
}

// Operator stores an operator (unless the name exists) and returns a certificate for it.
func (e *Env) Operator(name string, role store.Role, tenants ...string) Cred {
	e.T.Helper()
	err := e.Store.CreateOperator(context.Background(), store.Operator{Name: name, Role: role,
		Tenants: tenants, CreatedAt: time.Now(), CreatedBy: "test"})
	if err != nil {
		e.T.Fatalf("create operator %s: %v", name, err)
	}
	return e.sign(func(csr []byte) ([][]byte, error) {
		chain, _, err := e.CA.SignOperator(csr, name, time.Hour)
		return chain, err
	})
}

// OperatorCert returns a certificate, valid for ttl, for the stored operator name.
func (e *Env) OperatorCert(name string, ttl time.Duration) Cred {
	e.T.Helper()
	return e.sign(func(csr []byte) ([][]byte, error) {
		chain, _, err := e.CA.SignOperator(csr, name, ttl)
		return chain, err
	})
}

// Tenant stores a tenant.
func (e *Env) Tenant(id string) {
	e.T.Helper()
	err := e.Store.CreateTenant(context.Background(), store.Tenant{ID: id, DisplayName: id,
		CreatedAt: time.Now(), CreatedBy: "test"})
	if err != nil {
		e.T.Fatalf("create tenant %s: %v", id, err)
	}
}

// Agent stores an enrolled agent in tenant and returns a certificate for it.
func (e *Env) Agent(tenant, id string) Cred {
	e.T.Helper()
	err := e.Store.CreateAgent(context.Background(), store.Agent{ID: id, Tenant: tenant,
		Tier: 1, EnrolledAt: time.Now(), Host: store.HostFacts{Hostname: id + ".local"},
		CertExpires: time.Now().Add(time.Hour), CertSerial: "01"})
	if err != nil {
		e.T.Fatalf("create agent %s: %v", id, err)
	}
	return e.AgentCert(tenant, id)
}

// AgentCert returns a certificate for an agent identity without storing anything.
func (e *Env) AgentCert(tenant, id string) Cred {
	return e.sign(func(csr []byte) ([][]byte, error) {
		chain, _, err := e.CA.SignAgent(csr, tenant, id, time.Hour)
		return chain, err
	})
}

func (e *Env) sign(issue func(csr []byte) ([][]byte, error)) Cred {
	e.T.Helper()
	key, err := pki.NewKey()
	if err != nil {
		e.T.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "test")
	if err != nil {
		e.T.Fatal(err)
	}
	chain, err := issue(csr)
	if err != nil {
		e.T.Fatal(err)
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		e.T.Fatal(err)
	}
	certPEM := pki.EncodeCerts(chain...)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		e.T.Fatal(err)
	}
	return Cred{TLS: pair, CertPEM: certPEM, KeyPEM: keyPEM}
}

// WriteCred writes c to dir as cert.pem, key.pem (0600) and ca.pem, and returns the
// paths.
func (e *Env) WriteCred(dir string, c Cred) (certPath, keyPath, caPath string) {
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	caPath = filepath.Join(dir, "ca.pem")
	for _, f := range []struct {
		path string
		data []byte
	}{{certPath, c.CertPEM}, {keyPath, c.KeyPEM}, {caPath, e.CA.BundlePEM()}} {
		if err := pki.WriteFile(f.path, f.data, pki.PrivateMode); err != nil {
			e.T.Fatal(err)
		}
	}
	return certPath, keyPath, caPath
}

// Dial connects to the endpoint presenting c (nil: no client certificate) and verifying
// the server against roots (nil: the installation's).
func (e *Env) Dial(c *Cred, roots *x509.CertPool) *grpc.ClientConn {
	e.T.Helper()
	if roots == nil {
		roots = e.CA.Roots()
	}
	var get func() (*tls.Certificate, error)
	if c != nil {
		get = func() (*tls.Certificate, error) { return &c.TLS, nil }
	}
	cfg := pki.ClientConfig(roots, "localhost", get)
	conn, err := grpc.NewClient(e.Addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(func() { conn.Close() })
	return conn
}

// Admin returns an AdminService client over conn.
func Admin(conn *grpc.ClientConn) wardv1.AdminServiceClient {
	return wardv1.NewAdminServiceClient(conn)
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
