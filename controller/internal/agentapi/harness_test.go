package agentapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Badger's and glog-style background goroutines end with Close, but the
		// ristretto cache keeps a policy goroutine a moment longer.
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*defaultPolicy[...]).processItems"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*Cache[...]).processItems"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

const trustDomain = "msp.example"

// testLog returns a logger that writes to t.Log until the test ends, then drops.
func testLog(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(p[:len(p)-1]))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
}

// env is a real AgentService on loopback: Badger in a temp dir, a real CA, mTLS.
type env struct {
	t     *testing.T
	ca    *ca.CA
	store store.Store
	srv   *Server
	addr  string
	roots *x509.CertPool
}

type envOptions struct {
	cfg        func(*Config)
	maxRecvMsg int
}

func newEnv(t *testing.T, opts envOptions) *env {
	t.Helper()
	dir := t.TempDir()
	log := testLog(t)

	c, err := ca.Create(dir, trustDomain)
	if err != nil {
		t.Fatal(err)
	}
	st, err := badger.Open(dir+"/db", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	for _, tenant := range []string{"clinic-a", "clinic-b"} {
		if err := st.CreateTenant(ctx, store.Tenant{ID: tenant, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}

	cfg := Config{
		Store: st, CA: c, RootsDER: c.RootsDER(), TrustDomain: trustDomain, Log: log,
		RevocationScan: 200 * time.Millisecond,
	}
	if opts.cfg != nil {
		opts.cfg(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}

	e := &env{t: t, ca: c, store: st, srv: srv, roots: c.Roots()}
	e.serve(opts.maxRecvMsg)
	return e
}

// serve starts a gRPC server with the service and the Run loop; both stop at cleanup.
func (e *env) serve(maxRecvMsg int) {
	t := e.t
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	chain, err := e.ca.SignController(key.Public(), "ctl", []string{"localhost"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{{Certificate: chain, PrivateKey: key}},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    e.roots,
	}
	if maxRecvMsg == 0 {
		maxRecvMsg = DefaultMaxMessageBytes
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsCfg)),
		grpc.MaxRecvMsgSize(maxRecvMsg), grpc.WaitForHandlers(true), StreamTap())
	e.srv.Register(g)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = lis.Addr().String()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = g.Serve(lis) }()
	go func() { defer wg.Done(); _ = e.srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		g.Stop()
		wg.Wait()
	})
}

// agent is an enrolled agent with a key and certificate, and a client for it.
type agent struct {
	id, tenant string
	key        any
	cert       *tls.Certificate
	client     wardv1.AgentServiceClient
	conn       *grpc.ClientConn
}

// enrollAgent creates an agent record and a 1h certificate for it, as enrollment would,
// without stored roles (as before tokens carried them: host-only).
func (e *env) enrollAgent(id, tenant string) *agent {
	e.t.Helper()
	return e.enrollAgentAs(id, tenant)
}

// enrollAgentAs is enrollAgent with roles stored, as a token with them would.
func (e *env) enrollAgentAs(id, tenant string, roles ...string) *agent {
	t := e.t
	t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, id)
	if err != nil {
		t.Fatal(err)
	}
	chain, leaf, err := e.ca.SignAgent(csr, tenant, id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	err = e.store.CreateAgent(context.Background(), store.Agent{
		ID: id, Tenant: tenant, EnrolledAt: time.Now(),
		CertSerial: leaf.SerialNumber.Text(16), CertExpires: leaf.NotAfter, Roles: roles,
	})
	if err != nil {
		t.Fatal(err)
	}
	a := &agent{id: id, tenant: tenant, key: key,
		cert: &tls.Certificate{Certificate: chain, PrivateKey: key}}
	a.conn = e.dial(a.cert)
	a.client = wardv1.NewAgentServiceClient(a.conn)
	return a
}

// dial connects with cert as client certificate (nil: none).
func (e *env) dial(cert *tls.Certificate) *grpc.ClientConn {
	var get func() (*tls.Certificate, error)
	if cert != nil {
		get = func() (*tls.Certificate, error) { return cert, nil }
	}
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(
		credentials.NewTLS(pki.ClientConfig(e.roots, "localhost", get))))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

// stream is an open Connect stream with a timeout on each receive.
type stream struct {
	t      *testing.T
	s      wardv1.AgentService_ConnectClient
	cancel context.CancelFunc
}

func (a *agent) connect(t *testing.T) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := a.client.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &stream{t: t, s: s, cancel: cancel}
}

// hello sends a Hello listing the host role and returns the Welcome.
func (s *stream) hello() *wardv1.Welcome {
	s.t.Helper()
	return s.helloAs("host")
}

// helloAs sends a Hello listing roles and returns the Welcome.
func (s *stream) helloAs(roles ...string) *wardv1.Welcome {
	s.t.Helper()
	s.sendHello(roles...)
	resp, err := s.recv()
	if err != nil {
		s.t.Fatalf("recv welcome: %v", err)
	}
	w := resp.GetWelcome()
	if w == nil {
		s.t.Fatalf("first response is %T, want a welcome", resp.GetBody())
	}
	return w
}

// sendHello sends a Hello listing roles.
func (s *stream) sendHello(roles ...string) {
	s.t.Helper()
	s.send(&wardv1.ConnectRequest{Body: &wardv1.ConnectRequest_Hello{Hello: &wardv1.Hello{
		Host: &wardv1.HostFacts{Hostname: "srv-01", Os: "debian", Roles: roles},
	}}})
}

func (s *stream) send(m *wardv1.ConnectRequest) {
	s.t.Helper()
	if err := s.s.Send(m); err != nil && err != io.EOF {
		s.t.Fatalf("send: %v", err)
	}
}

// recv waits up to 5 s for the next response.
func (s *stream) recv() (*wardv1.ConnectResponse, error) {
	type result struct {
		m   *wardv1.ConnectResponse
		err error
	}
	ch := make(chan result, 1)
	go func() {
		m, err := s.s.Recv()
		ch <- result{m, err}
	}()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-time.After(5 * time.Second):
		s.cancel()
		r := <-ch
		_ = r
		s.t.Fatal("no response within 5 s")
		return nil, nil
	}
}

// ack expects the next response to be an Ack and returns its up_to_seq.
func (s *stream) ack() uint64 {
	s.t.Helper()
	resp, err := s.recv()
	if err != nil {
		s.t.Fatalf("recv ack: %v", err)
	}
	a := resp.GetAck()
	if a == nil {
		s.t.Fatalf("response is %T, want an ack", resp.GetBody())
	}
	return a.GetUpToSeq()
}

func heartbeat(seq uint64) *wardv1.ConnectRequest {
	return &wardv1.ConnectRequest{Seq: seq,
		Body: &wardv1.ConnectRequest_Heartbeat{Heartbeat: &wardv1.Heartbeat{UptimeSeconds: seq}}}
}
