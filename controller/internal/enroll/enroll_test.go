package enroll

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/install"
	"github.com/wardsec/ward/controller/internal/metrics"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
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

const trustDomain = "msp.example"

// testWriter copies log lines to t.Log (until the test ends) and keeps them for checks.
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
		w.t.Log(string(p[:len(p)-1]))
	}
	return len(p), nil
}

func (w *testWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

func testLog(t *testing.T) (*slog.Logger, *testWriter) {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), w
}

// env is an EnrollmentService on loopback over TLS, on a real installation.
type env struct {
	t       *testing.T
	store   store.Store
	ca      *ca.CA
	policy  *ca.PolicyKey
	metrics *metrics.Metrics
	client  wardv1.EnrollmentServiceClient
	logs    *testWriter
}

func newEnv(t *testing.T, cfg func(*Config)) *env {
	t.Helper()
	dir := t.TempDir()
	log, logs := testLog(t)
	ctx := context.Background()
	if err := install.Init(ctx, install.Options{DataDir: dir, TrustDomain: trustDomain,
		Log: log}); err != nil {
		t.Fatal(err)
	}
	paths := install.PathsOf(dir)
	authority, err := ca.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := ca.LoadPolicyKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := badger.Open(paths.DB, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateTenant(ctx, store.Tenant{ID: "clinic-a"}); err != nil {
		t.Fatal(err)
	}

	m := metrics.New()
	c := Config{
		Store: st, CA: authority, RootsDER: authority.RootsDER(),
		PolicyKeyDER: policy.PublicDER(), TrustDomain: trustDomain, Metrics: m, Log: log,
	}
	if cfg != nil {
		cfg(&c)
	}
	srv, err := New(c)
	if err != nil {
		t.Fatal(err)
	}

	pair, err := pki.LoadKeyPair(paths.ControllerCert, paths.ControllerKey)
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair},
	})))
	srv.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(lis) }()
	t.Cleanup(func() { g.Stop(); <-done })

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(
		credentials.NewTLS(pki.ClientConfig(authority.Roots(), "localhost", nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })

	return &env{t: t, store: st, ca: authority, policy: policy, metrics: m,
		client: wardv1.NewEnrollmentServiceClient(conn), logs: logs}
}

// token stores a token with the given secret; mutate adjusts it first.
func (e *env) token(id, secret string, mutate func(*store.Token)) {
	e.t.Helper()
	hash := sha256.Sum256([]byte(secret))
	tok := store.Token{
		ID: id, Tenant: "clinic-a", Hash: hash[:], ExpiresAt: time.Now().Add(time.Hour),
		UsesLeft: 1, Tier: 2, CreatedAt: time.Now(),
	}
	if mutate != nil {
		mutate(&tok)
	}
	if err := e.store.CreateToken(context.Background(), tok); err != nil {
		e.t.Fatal(err)
	}
}

func newCSR(t *testing.T) []byte {
	t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "ignored")
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func (e *env) enroll(token string, csr []byte) (*wardv1.EnrollResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.client.Enroll(ctx, &wardv1.EnrollRequest{Token: token, CsrDer: csr,
		Host: &wardv1.HostFacts{Hostname: "srv-01", Os: "debian", Arch: "amd64",
			Addresses: []string{"192.0.2.10"}, Roles: []string{"host"}}})
}

func (e *env) agents() []store.Agent {
	e.t.Helper()
	list, err := e.store.ListAgents(context.Background(), "")
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

func TestEnrollSuccess(t *testing.T) {
	e := newEnv(t, nil)
	e.token("tok1", "s3cret-token-value", nil)

	resp, err := e.enroll("s3cret-token-value", newCSR(t))
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}

	leaf, err := x509.ParseCertificate(resp.GetCertificateChain()[0])
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.FromCertificate(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if want := identity.Agent(trustDomain, "clinic-a", resp.GetAgentId()); id != want {
		t.Fatalf("certificate names %v, want %v", id, want)
	}
	if !identity.ValidName(resp.GetAgentId()) || len(resp.GetAgentId()) != 16 {
		t.Fatalf("agent id %q", resp.GetAgentId())
	}
	if life := time.Until(leaf.NotAfter); life < 23*time.Hour+50*time.Minute || life > 24*time.Hour {
		t.Fatalf("certificate lives %v, want 24h", life)
	}

	// It chains to the bundle the response carries, which is ca.pem's root.
	roots := x509.NewCertPool()
	for _, der := range resp.GetCaCertificates() {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		roots.AddCert(c)
	}
	inter := x509.NewCertPool()
	for _, der := range resp.GetCertificateChain()[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("certificate does not chain to the bundle: %v", err)
	}
	if string(resp.GetCaCertificates()[0]) != string(e.ca.RootsDER()[0]) {
		t.Fatal("bundle is not the installation's root")
	}
	if string(resp.GetPolicyPublicKey()) != string(e.policy.PublicDER()) ||
		resp.GetTrustDomain() != trustDomain || resp.GetTenant() != "clinic-a" {
		t.Fatalf("response = %+v", resp)
	}

	agents := e.agents()
	if len(agents) != 1 {
		t.Fatalf("%d agents stored", len(agents))
	}
	a := agents[0]
	if a.ID != resp.GetAgentId() || a.Tenant != "clinic-a" || a.TokenID != "tok1" ||
		a.Tier != 2 || a.Host.Hostname != "srv-01" ||
		a.CertSerial != leaf.SerialNumber.Text(16) || !a.CertExpires.Equal(leaf.NotAfter) {
		t.Fatalf("stored agent = %+v", a)
	}

	if strings.Contains(e.logs.String(), "s3cret-token-value") {
		t.Fatal("the log contains the token secret")
	}

	// Single use: the same token again is refused.
	if _, err := e.enroll("s3cret-token-value", newCSR(t)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("second use = %v, want PermissionDenied", err)
	}
}

func TestEnrollRefusals(t *testing.T) {
	tests := []struct {
		name   string
		secret string // what the caller sends
		mutate func(*store.Token)
	}{
		{"wrong token", "not-the-secret", nil},
		{"empty token", "", nil},
		{"expired", "the-secret", func(tok *store.Token) {
			tok.ExpiresAt = time.Now().Add(-time.Minute)
		}},
		{"used up", "the-secret", func(tok *store.Token) { tok.UsesLeft = 0 }},
		{"revoked", "the-secret", func(tok *store.Token) { tok.Revoked = true }},
		{"wrong address", "the-secret", func(tok *store.Token) {
			tok.CIDR = netip.MustParsePrefix("10.0.0.0/8")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.token("tok1", "the-secret", tt.mutate)

			resp, err := e.enroll(tt.secret, newCSR(t))
			st := status.Convert(err)
			if st.Code() != codes.PermissionDenied || st.Message() != "enrollment refused" {
				t.Fatalf("Enroll = %v, want PermissionDenied \"enrollment refused\"", err)
			}
			if resp != nil {
				t.Fatal("a refusal carries a response")
			}
			if n := len(e.agents()); n != 0 {
				t.Fatalf("%d agents created", n)
			}
			logs := e.logs.String()
			if !strings.Contains(logs, "enrollment refused") {
				t.Fatal("the refusal is not logged")
			}
			if tt.secret != "" && strings.Contains(logs, tt.secret) {
				t.Fatal("the log contains the token secret")
			}
		})
	}
}

func TestEnrollCorrectTokenFromAllowedNetwork(t *testing.T) {
	e := newEnv(t, nil)
	e.token("tok1", "the-secret", func(tok *store.Token) {
		tok.CIDR = netip.MustParsePrefix("127.0.0.0/8")
	})
	if _, err := e.enroll("the-secret", newCSR(t)); err != nil {
		t.Fatalf("Enroll from 127.0.0.1 with a 127.0.0.0/8 token: %v", err)
	}
}

func TestEnrollBadCSRKeepsToken(t *testing.T) {
	e := newEnv(t, nil)
	e.token("tok1", "the-secret", nil)

	for _, csr := range [][]byte{[]byte("garbage"), nil} {
		_, err := e.enroll("the-secret", csr)
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("Enroll with a bad CSR = %v, want InvalidArgument", err)
		}
	}
	if _, err := e.enroll("the-secret", newCSR(t)); err != nil {
		t.Fatalf("the token was consumed by a bad CSR: %v", err)
	}
}

func TestEnrollRefusalRateLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RefusalBurst = 3 })
	e.token("tok1", "the-secret", nil)

	for i := range 3 {
		_, err := e.enroll("guess", newCSR(t))
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("guess %d = %v, want PermissionDenied", i, err)
		}
	}
	// Over the limit even the right token is not looked at, and so not consumed.
	_, err := e.enroll("the-secret", newCSR(t))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("after the burst = %v, want ResourceExhausted", err)
	}
	toks, err := e.store.ListTokens(context.Background(), "clinic-a")
	if err != nil {
		t.Fatal(err)
	}
	if toks[0].UsesLeft != 1 {
		t.Fatalf("uses left = %d, want 1", toks[0].UsesLeft)
	}
}

func TestEnrollRaceForLastUse(t *testing.T) {
	e := newEnv(t, nil)
	e.token("tok1", "the-secret", func(tok *store.Token) { tok.UsesLeft = 2 })

	const racers = 6
	codesSeen := make(chan codes.Code, racers)
	var wg sync.WaitGroup
	for range racers {
		csr := newCSR(t)
		wg.Go(func() {
			_, err := e.enroll("the-secret", csr)
			codesSeen <- status.Code(err)
		})
	}
	wg.Wait()
	close(codesSeen)

	var ok, refused int
	for c := range codesSeen {
		switch c {
		case codes.OK:
			ok++
		case codes.PermissionDenied:
			refused++
		default:
			t.Errorf("Enroll = %v, want OK or PermissionDenied", c)
		}
	}
	if ok != 2 || refused != racers-2 {
		t.Fatalf("%d enrolled, %d refused; want 2 and %d", ok, refused, racers-2)
	}
	if n := len(e.agents()); n != 2 {
		t.Fatalf("%d agents stored, want 2", n)
	}
}

// countingSigner counts the agent certificates it signs.
type countingSigner struct {
	*ca.CA
	n atomic.Int32
}

func (c *countingSigner) SignAgentKey(pub crypto.PublicKey, tenant, agentID string,
	ttl time.Duration) ([][]byte, *x509.Certificate, error) {
	c.n.Add(1)
	return c.CA.SignAgentKey(pub, tenant, agentID, ttl)
}

// TestEnrollTokenRevokedAfterUse revokes a token after an enrollment: the next ones are
// refused and change nothing, and only the first refusal costs a signature.
func TestEnrollTokenRevokedAfterUse(t *testing.T) {
	var signer *countingSigner
	e := newEnv(t, func(c *Config) {
		signer = &countingSigner{CA: c.CA.(*ca.CA)}
		c.CA = signer
	})
	e.token("tok1", "the-secret", func(tok *store.Token) { tok.UsesLeft = 3 })
	if _, err := e.enroll("the-secret", newCSR(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.RevokeToken(context.Background(), "tok1"); err != nil {
		t.Fatal(err)
	}

	for range 3 {
		_, err := e.enroll("the-secret", newCSR(t))
		if st := status.Convert(err); st.Code() != codes.PermissionDenied ||
			st.Message() != "enrollment refused" {
			t.Fatalf("Enroll with a revoked token = %v", err)
		}
	}
	if n := len(e.agents()); n != 1 {
		t.Fatalf("%d agents stored, want 1", n)
	}
	toks, err := e.store.ListTokens(context.Background(), "clinic-a")
	if err != nil {
		t.Fatal(err)
	}
	if toks[0].UsesLeft != 2 {
		t.Fatalf("uses left = %d, want 2", toks[0].UsesLeft)
	}
	if n := signer.n.Load(); n != 2 {
		t.Fatalf("%d certificates signed, want 2 (the enrollment and the first refusal)", n)
	}
}
