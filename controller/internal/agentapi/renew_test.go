package agentapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestRenewUnderLiveStream(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *Config) { c.CertTTL = 2 * time.Hour }})
	a := e.enrollAgent("a1", "clinic-a")
	s := a.connect(t)
	s.hello()
	s.send(heartbeat(1))
	s.ack()
	before := getAgent(t, e.store, "a1")

	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "somebody-else") // names in the CSR are ignored
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := a.client.Renew(ctx, &wardv1.RenewRequest{CsrDer: csr})
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}

	leaf, err := x509.ParseCertificate(resp.GetCertificateChain()[0])
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.FromCertificate(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if id != identity.Agent(trustDomain, "clinic-a", "a1") {
		t.Fatalf("renewed certificate names %v", id)
	}
	if life := leaf.NotAfter.Sub(time.Now()); life < 119*time.Minute || life > 121*time.Minute {
		t.Fatalf("renewed certificate lives %v, want 2h", life)
	}
	if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Fatal("renewed certificate is not for the CSR's key")
	}
	after := getAgent(t, e.store, "a1")
	if after.CertSerial == before.CertSerial || after.CertSerial != leaf.SerialNumber.Text(16) {
		t.Fatalf("stored serial %s, want the new %s", after.CertSerial, leaf.SerialNumber.Text(16))
	}

	// The stream survives the renewal.
	s.send(heartbeat(2))
	if got := s.ack(); got != 2 {
		t.Fatalf("ack after renewal = %d", got)
	}

	// And the new certificate works for a new connection.
	conn := e.dial(&tls.Certificate{Certificate: resp.GetCertificateChain(), PrivateKey: key})
	s2 := (&agent{client: wardv1.NewAgentServiceClient(conn)}).connect(t)
	if w := s2.hello(); w.GetAgentId() != "a1" || w.GetAckedSeq() != 2 {
		t.Fatalf("welcome with the renewed certificate = %v", w)
	}
}

func TestRenewRefusals(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.enrollAgent("a1", "clinic-a")
	revoked := e.enrollAgent("a2", "clinic-a")
	_, err := e.store.UpdateAgent(context.Background(), "a2", func(ag *store.Agent) error {
		ag.Revoked = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "x")
	if err != nil {
		t.Fatal(err)
	}
	opKey, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	opCSR, err := pki.NewCSR(opKey, "alice")
	if err != nil {
		t.Fatal(err)
	}
	opChain, _, err := e.ca.SignOperator(opCSR, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	operator := wardv1.NewAgentServiceClient(
		e.dial(&tls.Certificate{Certificate: opChain, PrivateKey: opKey}))
	anonymous := wardv1.NewAgentServiceClient(e.dial(nil))

	tests := []struct {
		name   string
		client wardv1.AgentServiceClient
		csr    []byte
		code   codes.Code
	}{
		{"garbage csr", a.client, []byte("garbage"), codes.InvalidArgument},
		{"revoked agent", revoked.client, csr, codes.PermissionDenied},
		{"operator certificate", operator, csr, codes.PermissionDenied},
		{"no certificate", anonymous, csr, codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := tt.client.Renew(ctx, &wardv1.RenewRequest{CsrDer: tt.csr})
			if status.Code(err) != tt.code {
				t.Fatalf("Renew = %v, want %v", err, tt.code)
			}
		})
	}
}

func TestConnectWithoutAgentCertificate(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := &agent{client: wardv1.NewAgentServiceClient(e.dial(nil))}
	s := c.connect(t)
	s.send(&wardv1.ConnectRequest{Body: &wardv1.ConnectRequest_Hello{Hello: &wardv1.Hello{}}})
	s.wantCode(codes.Unauthenticated)
}

// evidenceLog keeps entries, or fails every Record when fail is set.
type evidenceLog struct {
	mu      sync.Mutex
	entries []evidence.Entry
	fail    bool
}

func (l *evidenceLog) Record(_ context.Context, e evidence.Entry) (evidence.Receipt, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail {
		return evidence.Receipt{}, errors.New("log unavailable")
	}
	l.entries = append(l.entries, e)
	return evidence.Receipt{Tenant: e.Tenant, Seq: uint64(len(l.entries))}, nil
}

func TestRenewRecordedAsEvidence(t *testing.T) {
	log := &evidenceLog{}
	e := newEnv(t, envOptions{cfg: func(c *Config) { c.Evidence = log }})
	a := e.enrollAgent("a1", "clinic-a")
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "x")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	if _, err := a.client.Renew(ctx, &wardv1.RenewRequest{CsrDer: csr}); err != nil {
		t.Fatal(err)
	}
	log.mu.Lock()
	entries := log.entries
	log.fail = true // from now on
	log.mu.Unlock()
	if len(entries) != 1 || entries[0].Type != evidence.TypeAgentRenewed ||
		entries[0].Tenant != "clinic-a" || entries[0].Subject != "a1" {
		t.Fatalf("evidence = %+v", entries)
	}

	_, err = a.client.Renew(ctx, &wardv1.RenewRequest{CsrDer: csr})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Renew with the evidence log down = %v, want Unavailable", err)
	}
}
