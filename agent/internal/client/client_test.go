package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/agent/internal/logtest"
	"github.com/wardsec/ward/agent/internal/spool"
	"github.com/wardsec/ward/agent/internal/state"
	"github.com/wardsec/ward/agent/internal/testca"
	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/pki"
	"github.com/wardsec/ward/pkg/policysig"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testInfo = state.Info{AgentID: "agent-1", Tenant: "clinic-a", TrustDomain: "msp.example"}

type agent struct {
	c      *Client
	spool  *spool.Spool
	dir    state.Dir
	log    *logtest.Recorder
	policy *ecdsa.PrivateKey
	done   chan error
	cancel context.CancelFunc
}

// agentCert issues the agent's certificate valid from notBefore for ttl.
func agentCert(t *testing.T, ca *testca.CA, notBefore time.Time, ttl time.Duration) tls.Certificate {
	t.Helper()
	key, _ := pki.NewKey()
	der, err := ca.Issue(&key.PublicKey, testInfo.ID(), notBefore, ttl)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// newAgent builds a client for addr; tweak adjusts its Config. Start it with run.
func newAgent(t *testing.T, ca *testca.CA, addr string, cert tls.Certificate,
	tweak func(*Config)) *agent {
	t.Helper()
	dir := state.Dir(t.TempDir())
	sp, err := spool.Open(spool.Config{Dir: dir.SpoolPath(), Log: logtest.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	policy, _ := pki.NewKey()
	log, rec := logtest.NewRecorder(t)

	cfg := Config{
		Addr: addr, Info: testInfo, Dir: dir, Cert: cert, Roots: ca.Pool(),
		PolicyKey: &policy.PublicKey, Spool: sp, Log: log,
		Facts:      func() *wardv1.HostFacts { return &wardv1.HostFacts{Hostname: "fs01"} },
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &agent{c: c, spool: sp, dir: dir, log: rec, policy: policy}
}

func (a *agent) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.done = make(chan error, 1)
	go func() { a.done <- a.c.Run(ctx) }()
	t.Cleanup(func() { a.stop(t) })
}

func (a *agent) stop(t *testing.T) {
	t.Helper()
	a.cancel()
	select {
	case err := <-a.done:
		if err != nil {
			t.Errorf("Run returned %v after cancel", err)
		}
		a.done <- nil // idempotent for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func drift(i int) *wardv1.ConnectRequest {
	return &wardv1.ConnectRequest{Body: &wardv1.ConnectRequest_DriftReport{
		DriftReport: &wardv1.DriftReport{BaselineId: "hipaa-v1", Trigger: "schedule",
			BaselineVersion: string(rune('a' + i%26))}}}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHelloWelcomeHeartbeatsAndAcks(t *testing.T) {
	ca := testca.New(t, "msp.example")
	f := newFakeController(t, ca)
	f.interval = 30 * time.Millisecond // the Welcome overrides the agent's hour
	a := newAgent(t, ca, f.addr(), agentCert(t, ca, time.Now(), time.Hour),
		func(c *Config) { c.HeartbeatInterval = time.Hour })
	a.run(t)

	eventually(t, "five heartbeats", func() bool {
		_, _, got := f.snapshot()
		return len(got) >= 5
	})
	f.mu.Lock()
	hello := f.hellos[0]
	types := f.types[1]
	f.mu.Unlock()
	if hello.GetHost().GetHostname() != "fs01" || hello.GetSpool().GetNextSeq() != 1 {
		t.Errorf("hello = %v", hello)
	}
	if types != "heartbeat" {
		t.Errorf("first sequenced message is a %s", types)
	}
	_, _, got := f.snapshot()
	for seq, n := range got {
		if n != 1 {
			t.Errorf("seq %d received %d times on a stable connection", seq, n)
		}
	}
	eventually(t, "acks to empty the spool", func() bool {
		return a.spool.State().Messages <= 1 // the newest beat may be in flight
	})
	if !a.log.Contains("connected to controller") {
		t.Error("no connected event logged")
	}
}

func TestResendAfterReconnectSkipsAcknowledgedAndLosesNothing(t *testing.T) {
	ca := testca.New(t, "msp.example")
	f := newFakeController(t, ca)
	f.holdAcks = true
	a := newAgent(t, ca, f.addr(), agentCert(t, ca, time.Now(), time.Hour), nil)

	for i := range 10 { // spooled while offline
		if _, err := a.c.Enqueue(drift(i)); err != nil {
			t.Fatal(err)
		}
	}
	a.run(t)
	for i := 10; i < 20; i++ { // and while connected
		if _, err := a.c.Enqueue(drift(i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "20 messages", func() bool { _, _, got := f.snapshot(); return len(got) == 20 })

	// The controller durably stored only up to 12, then the connection broke.
	f.set(func(f *fakeController) { f.acked, f.holdAcks = 12, false })
	f.lis.dropAll()
	eventually(t, "the spool to drain", func() bool { return a.spool.State().Messages == 0 })

	_, _, got := f.snapshot()
	for seq := uint64(1); seq <= 20; seq++ {
		want := 1
		if seq > 12 {
			want = 2 // unacknowledged at the break: resent once
		}
		if got[seq] != want {
			t.Errorf("seq %d received %d times, want %d", seq, got[seq], want)
		}
	}
	f.mu.Lock()
	firsts := f.firstSeqs
	f.mu.Unlock()
	if len(firsts) != 2 || firsts[0] != 1 || firsts[1] != 13 {
		t.Errorf("first seq of each stream = %v, want [1 13]", firsts)
	}
	if !a.log.Contains("disconnected from controller") {
		t.Error("no disconnected event logged")
	}

	seq, err := a.c.Enqueue(drift(99))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new message", func() bool { _, _, got := f.snapshot(); return got[seq] == 1 })
}

func TestLongSpoolIsResentWithinTheAnnouncedRate(t *testing.T) {
	ca := testca.New(t, "msp.example")
	f := newFakeController(t, ca)
	f.msgRate, f.msgBurst = 40, 10
	a := newAgent(t, ca, f.addr(), agentCert(t, ca, time.Now(), time.Hour), nil)

	const n = 60 // spooled while the controller was away: six times its burst
	for i := range n {
		if _, err := a.c.Enqueue(drift(i)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	a.run(t)
	eventually(t, "the spool to drain", func() bool { return a.spool.State().Messages == 0 })
	took := time.Since(start)

	_, _, got := f.snapshot()
	for seq := uint64(1); seq <= n; seq++ {
		if got[seq] != 1 {
			t.Errorf("seq %d received %d times, want once", seq, got[seq])
		}
	}
	f.mu.Lock()
	refusals, connects := f.rateRefusals, f.connects
	f.mu.Unlock()
	if refusals != 0 || connects != 1 {
		t.Errorf("%d rate refusals over %d connections, want none over one", refusals,
			connects)
	}
	// 8 at once, then 32 a second: at least about 1.6 s for 60
	if min := time.Duration(float64(n-8) / 32 * float64(time.Second)); took < min*9/10 {
		t.Errorf("60 messages sent in %v, faster than the pace allows (%v)", took, min)
	}
}

func TestNoPaceWhenTheControllerAnnouncesNone(t *testing.T) {
	if p := pacer(0, 200); p != nil {
		t.Errorf("pacer(0, 200) = %v, want none", p)
	}
	p := pacer(50, 200)
	if p == nil || p.Limit() != 40 || p.Burst() != 160 {
		t.Fatalf("pacer(50, 200) = %v, want 40/s with a burst of 160", p)
	}
	if p := pacer(0.5, 0); p == nil || p.Burst() != 1 {
		t.Errorf("pacer(0.5, 0) burst = %v, want 1", p)
	}
}

func TestBackoffAgainstAnUnreachableController(t *testing.T) {
	ca := testca.New(t, "msp.example")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := &trackingListener{Listener: lis}
	go func() { // accepts and hangs up: every handshake fails
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	defer lis.Close()

	a := newAgent(t, ca, lis.Addr().String(), agentCert(t, ca, time.Now(), time.Hour),
		func(c *Config) { c.MinBackoff, c.MaxBackoff = 50*time.Millisecond, 400*time.Millisecond })
	a.run(t)
	time.Sleep(2 * time.Second)
	a.stop(t)

	// Without backoff this would be thousands; with it, about one per 200 ms at most.
	n := tl.accepted()
	if n < 2 || n > 25 {
		t.Errorf("%d connection attempts in 2 s with a 50-400 ms backoff", n)
	}
	if got := a.log.Count("cannot reach controller"); got != 1 {
		t.Errorf("'cannot reach controller' logged %d times; want once (log on change)", got)
	}
}

func TestRefusedAgentRetriesSlowly(t *testing.T) {
	ca := testca.New(t, "msp.example")
	f := newFakeController(t, ca)
	f.refuse = status.Error(codes.PermissionDenied, "agent revoked")
	a := newAgent(t, ca, f.addr(), agentCert(t, ca, time.Now(), time.Hour),
		func(c *Config) { c.MinBackoff, c.MaxBackoff = 10*time.Millisecond, 400*time.Millisecond })
	a.run(t)
	time.Sleep(1500 * time.Millisecond)
	a.stop(t)

	// Slow retries wait 200-400 ms, where the normal backoff would start at 10 ms.
	connects, _, _ := f.snapshot()
	if connects < 2 || connects > 8 {
		t.Errorf("%d Connect attempts in 1.5 s; want slow retries (2-8)", connects)
	}
	if got := a.log.Count("controller refused this agent"); got != 1 {
		t.Errorf("refusal logged %d times, want once", got)
	}
}

func TestRenewalUnderALiveStream(t *testing.T) {
	ca := testca.New(t, "msp.example")
	f := newFakeController(t, ca)
	old := agentCert(t, ca, time.Now(), 3*time.Second) // renewed at about 2 s
	a := newAgent(t, ca, f.addr(), old, nil)
	a.run(t)

	eventually(t, "the renewal", func() bool { _, r, _ := f.snapshot(); return r == 1 })
	connects, _, _ := f.snapshot()
	if connects != 1 {
		t.Fatalf("%d Connects during renewal; the stream must stay up", connects)
	}
	seq, _ := a.c.Enqueue(drift(1))
	eventually(t, "a message on the same stream", func() bool {
		_, _, got := f.snapshot()
		return got[seq] == 1
	})
	if connects, _, _ := f.snapshot(); connects != 1 {
		t.Fatalf("%d Connects after renewal; the stream must stay up", connects)
	}

	st, err := os.ReadFile(filepath.Join(string(a.dir), state.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := pki.ParseCerts(st)
	newSerial := stored[0].SerialNumber.Text(16)
	if newSerial == old.Leaf.SerialNumber.Text(16) {
		t.Fatal("cert.pem still holds the old certificate")
	}
	if fi, _ := os.Stat(filepath.Join(string(a.dir), state.KeyFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("renewed key.pem mode %o", fi.Mode().Perm())
	}

	f.lis.dropAll() // force a new handshake
	eventually(t, "a reconnect", func() bool { c, _, _ := f.snapshot(); return c == 2 })
	f.mu.Lock()
	serials := f.serials
	f.mu.Unlock()
	if serials[1] != newSerial {
		t.Errorf("new handshake presented serial %s, want the renewed %s", serials[1], newSerial)
	}
}

func TestRenewCertificateRequestRenewsAtOnce(t *testing.T) {
	ca := testca.New(t, "msp.example")
	f := newFakeController(t, ca)
	a := newAgent(t, ca, f.addr(), agentCert(t, ca, time.Now(), time.Hour), nil)
	a.run(t)
	eventually(t, "the connection", func() bool { c, _, _ := f.snapshot(); return c == 1 })

	f.pushes <- &wardv1.ConnectResponse{Body: &wardv1.ConnectResponse_RenewCertificate{
		RenewCertificate: &wardv1.RenewCertificate{Reason: "ca rotation"}}}
	eventually(t, "the renewal", func() bool { _, r, _ := f.snapshot(); return r == 1 })
	eventually(t, "the renewal log", func() bool { return a.log.Contains("ca rotation") })
}

func TestExpiredCertificateStopsWithAClearError(t *testing.T) {
	ca := testca.New(t, "msp.example")
	f := newFakeController(t, ca)
	a := newAgent(t, ca, f.addr(), agentCert(t, ca, time.Now().Add(-2*time.Hour), time.Hour), nil)

	err := a.c.Run(context.Background())
	if !errors.Is(err, ErrCertExpired) {
		t.Fatalf("Run = %v, want ErrCertExpired", err)
	}
	for _, want := range []string{"enrolled again", "wardctl token create --tenant clinic-a",
		"ward-agent enroll --force"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestRenewalFailingUntilExpiryStops(t *testing.T) {
	ca := testca.New(t, "msp.example")
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := lis.Addr().String()
	lis.Close() // nobody listens: renewal cannot succeed

	a := newAgent(t, ca, addr, agentCert(t, ca, time.Now(), 1500*time.Millisecond), nil)
	done := make(chan error, 1)
	go func() { done <- a.c.Run(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrCertExpired) {
			t.Fatalf("Run = %v, want ErrCertExpired", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run kept going with an expired certificate")
	}
}

func sign(t *testing.T, key *ecdsa.PrivateKey, typ string, m proto.Message) *wardv1.SignedPayload {
	t.Helper()
	payload, _ := proto.Marshal(m)
	sig, err := ecdsa.SignASN1(rand.Reader, key, policysig.Digest(typ, payload))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := policysig.KeyID(&key.PublicKey)
	return &wardv1.SignedPayload{Payload: payload, Signature: sig, PayloadType: typ, KeyId: id}
}

func TestSignedPayloadsAreVerifiedAndNeverRun(t *testing.T) {
	ca := testca.New(t, "msp.example")
	f := newFakeController(t, ca)
	a := newAgent(t, ca, f.addr(), agentCert(t, ca, time.Now(), time.Hour), nil)
	a.run(t)
	eventually(t, "the connection", func() bool { c, _, _ := f.snapshot(); return c == 1 })

	spec := func(agentID string) *wardv1.CommandSpec {
		return &wardv1.CommandSpec{CommandId: "cmd-" + agentID, AgentId: agentID,
			Tenant: "clinic-a", ExpiresAt: timestamppb.New(time.Now().Add(time.Hour))}
	}
	other, _ := pki.NewKey()
	tests := []struct {
		name    string
		payload *wardv1.SignedPayload
		want    string
	}{
		{"valid", sign(t, a.policy, "ward.v1.CommandSpec", spec("agent-1")),
			"command verified; running commands is not yet supported"},
		{"foreign key", sign(t, other, "ward.v1.CommandSpec", spec("agent-1")),
			"command refused: signature does not verify"},
		{"wrong type", sign(t, a.policy, "ward.v1.BaselineSpec", spec("agent-1")),
			"command refused: signature does not verify"},
		{"other agent", sign(t, a.policy, "ward.v1.CommandSpec", spec("agent-2")),
			"command refused: addressed to another agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := a.log.Count(tt.want)
			f.pushes <- &wardv1.ConnectResponse{Body: &wardv1.ConnectResponse_Command{
				Command: tt.payload}}
			eventually(t, tt.want, func() bool { return a.log.Count(tt.want) > before })
		})
	}
}

func TestTLSRefusesAControllerOutsideTheTrustDomain(t *testing.T) {
	ca := testca.New(t, "msp.example")
	cr, _ := newCreds(agentCert(t, ca, time.Now(), time.Hour), time.Time{}, ca.Pool())

	tests := []struct {
		name string
		id   identity.ID
		ok   bool
	}{
		{"controller", identity.Controller("msp.example", "c1"), true},
		{"other domain", identity.Controller("evil.example", "c1"), false},
		{"an agent", identity.Agent("msp.example", "clinic-a", "x"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, _ := pki.NewKey()
			der, _ := ca.Issue(&key.PublicKey, identity.Controller("msp.example", "tmp"),
				time.Now().Add(-time.Minute), time.Hour)
			if tt.id.Kind == identity.KindController {
				der, _ = ca.Issue(&key.PublicKey, tt.id, time.Now().Add(-time.Minute), time.Hour)
			} else {
				der = reissueWithServerNames(t, ca, key, tt.id)
			}
			leaf, _ := x509.ParseCertificate(der)
			err := cr.verifyController(tls.ConnectionState{
				PeerCertificates: []*x509.Certificate{leaf}}, "localhost", "msp.example")
			if (err == nil) != tt.ok {
				t.Errorf("verifyController = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// reissueWithServerNames issues a server certificate carrying a non-controller identity.
func reissueWithServerNames(t *testing.T, ca *testca.CA, key *ecdsa.PrivateKey,
	id identity.ID) []byte {
	t.Helper()
	der, _ := ca.Issue(&key.PublicKey, identity.Controller("msp.example", "x"),
		time.Now().Add(-time.Minute), time.Hour)
	tmpl, _ := x509.ParseCertificate(der)
	tmpl.URIs[0] = id.URL()
	out, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRenewalOfBackdatedShortCertificatesDoesNotSpin(t *testing.T) {
	ca := testca.New(t, "msp.example")
	f := newFakeController(t, ca)
	f.certTTL = 1500 * time.Millisecond // NotBefore a minute back: due at once by NotBefore
	a := newAgent(t, ca, f.addr(), agentCert(t, ca, time.Now(), time.Hour), nil)
	a.run(t)
	eventually(t, "the connection", func() bool { c, _, _ := f.snapshot(); return c == 1 })

	f.pushes <- &wardv1.ConnectResponse{Body: &wardv1.ConnectResponse_RenewCertificate{
		RenewCertificate: &wardv1.RenewCertificate{Reason: "test"}}}
	time.Sleep(2500 * time.Millisecond)

	// One on request, then one per about a second: never a renewal storm.
	if _, r, _ := f.snapshot(); r < 2 || r > 5 {
		t.Errorf("%d renewals in 2.5 s of 1.5 s certificates; want 2 to 5", r)
	}
}

func TestAMessageTheControllerKeepsRefusingIsDroppedNotRetriedForever(t *testing.T) {
	ca := testca.New(t, "msp.example")
	f := newFakeController(t, ca)
	f.invalid = 2
	a := newAgent(t, ca, f.addr(), agentCert(t, ca, time.Now(), time.Hour), nil)
	for i := range 3 {
		if _, err := a.c.Enqueue(drift(i)); err != nil {
			t.Fatal(err)
		}
	}
	a.run(t)

	eventually(t, "the spool to drain", func() bool { return a.spool.State().Messages == 0 })
	_, _, got := f.snapshot()
	if got[1] != 1 || got[3] != 1 {
		t.Errorf("good messages received %d and %d times, want once each", got[1], got[3])
	}
	if got[2] != poisonRefusals {
		t.Errorf("refused message sent %d times, want %d", got[2], poisonRefusals)
	}
	if !a.log.Contains("controller keeps refusing a message as invalid") {
		t.Error("dropping the message was not logged")
	}
}

func TestHooksReceiveCommandsAndVerifiedBaselines(t *testing.T) {
	ca := testca.New(t, "msp.example")
	f := newFakeController(t, ca)
	commands := make(chan *wardv1.SignedPayload, 4)
	baselines := make(chan *wardv1.BaselineSpec, 4)
	a := newAgent(t, ca, f.addr(), agentCert(t, ca, time.Now(), time.Hour), func(c *Config) {
		c.Commands = func(p *wardv1.SignedPayload) { commands <- p }
		c.Baselines = func(s *wardv1.BaselineSpec) { baselines <- s }
		c.BaselineVersion = func() string { return "1.0.7" }
	})
	a.run(t)
	eventually(t, "the connection", func() bool { c, _, _ := f.snapshot(); return c == 1 })
	f.mu.Lock()
	hello := f.hellos[0]
	f.mu.Unlock()
	if hello.GetBaselineVersion() != "1.0.7" {
		t.Errorf("Hello reports baseline %q, want 1.0.7", hello.GetBaselineVersion())
	}

	// Commands go to the hook as they came: the executor verifies them and reports refusals.
	other, _ := pki.NewKey()
	cmd := sign(t, other, "ward.v1.CommandSpec", &wardv1.CommandSpec{CommandId: "c1"})
	f.pushes <- &wardv1.ConnectResponse{Body: &wardv1.ConnectResponse_Command{Command: cmd}}
	select {
	case got := <-commands:
		if !proto.Equal(got, cmd) {
			t.Error("the hook got another payload")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the command hook was not called")
	}

	// Only a verified baseline for this tenant reaches the hook.
	spec := func(tenant, version string) *wardv1.BaselineSpec {
		return &wardv1.BaselineSpec{BaselineId: "hipaa-v1", Version: version, Tenant: tenant}
	}
	for _, p := range []*wardv1.SignedPayload{
		sign(t, other, "ward.v1.BaselineSpec", spec("clinic-a", "forged")),
		sign(t, a.policy, "ward.v1.BaselineSpec", spec("clinic-b", "other-tenant")),
		sign(t, a.policy, "ward.v1.CommandSpec", spec("clinic-a", "wrong-type")),
		sign(t, a.policy, "ward.v1.BaselineSpec", spec("clinic-a", "good")),
	} {
		f.pushes <- &wardv1.ConnectResponse{Body: &wardv1.ConnectResponse_BaselineUpdate{
			BaselineUpdate: p}}
	}
	select {
	case got := <-baselines:
		if got.GetVersion() != "good" {
			t.Fatalf("the hook got baseline %q, want only the good one", got.GetVersion())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the baseline hook was not called")
	}
}

// storedSerial is the serial of the certificate in the agent's cert.pem.
func storedSerial(t *testing.T, a *agent) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(string(a.dir), state.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.ParseCerts(data)
	if err != nil || len(certs) == 0 {
		t.Fatalf("cert.pem: %v", err)
	}
	return certs[0].SerialNumber.Text(16)
}

// TestRenewWaitsForTheNewCertificate is what rotate_certificate relies on: Renew returns
// only once the new certificate is stored and in use, returns the controller's refusal
// when the attempt fails, and gives up with ctx when no renew loop runs.
func TestRenewWaitsForTheNewCertificate(t *testing.T) {
	ca := testca.New(t, "msp.example")
	f := newFakeController(t, ca)
	old := agentCert(t, ca, time.Now(), time.Hour)
	a := newAgent(t, ca, f.addr(), old, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := a.c.Renew(ctx, "runbook rotate_certificate")
	cancel()
	if err == nil || !strings.Contains(err.Error(), "renewal not finished") {
		t.Fatalf("Renew without a running client = %v, want it to give up with ctx", err)
	}

	a.run(t)
	eventually(t, "the connection", func() bool { c, _, _ := f.snapshot(); return c == 1 })
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.c.Renew(ctx, "runbook rotate_certificate"); err != nil {
		t.Fatalf("Renew = %v", err)
	}
	// No waiting: when Renew returns the new certificate is stored and in use.
	renewed := storedSerial(t, a)
	if renewed == old.Leaf.SerialNumber.Text(16) {
		t.Fatal("Renew returned while cert.pem still held the old certificate")
	}
	if got := a.c.creds.leaf().SerialNumber.Text(16); got != renewed {
		t.Fatalf("client presents serial %s, want the renewed %s", got, renewed)
	}

	f.set(func(f *fakeController) {
		f.failRenew = status.Error(codes.Unavailable, "signing key offline")
	})
	err = a.c.Renew(ctx, "runbook rotate_certificate")
	if err == nil || !strings.Contains(err.Error(), "signing key offline") {
		t.Fatalf("Renew against a refusing controller = %v, want its reason", err)
	}
	if got := storedSerial(t, a); got != renewed {
		t.Fatalf("a failed renewal replaced cert.pem (serial %s)", got)
	}
}
