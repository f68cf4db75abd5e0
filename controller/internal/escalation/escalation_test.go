package escalation

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardsec/ward/controller/internal/remediation"
	"github.com/wardsec/ward/controller/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

var secret = []byte("0123456789abcdef-test-secret")

// receiver is a real HTTP server on loopback that refuses the first failures requests
// with 503, then verifies the signature and keeps the documents.
type receiver struct {
	t        *testing.T
	failures int

	mu       sync.Mutex
	requests int
	docs     []Document
	ids      []string
	badSig   int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	body, _ := io.ReadAll(req.Body)
	r.ids = append(r.ids, req.Header.Get(DeliveryHeader))
	if r.requests <= r.failures {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	err := Verify(secret, req.Header.Get(SignatureHeader), body, time.Now(), time.Minute)
	if err != nil {
		r.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var doc Document
	if err := json.Unmarshal(body, &doc); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	r.docs = append(r.docs, doc)
}

func newNotifier(t *testing.T, url string, key []byte, attempts int) *Notifier {
	n, err := New(Config{URL: url, Secret: key, Attempts: attempts,
		InitialBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(tWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func escalationFor() remediation.Escalation {
	return remediation.Escalation{
		Incident: store.Incident{ID: "inc-1", Tenant: "t1", Agent: "a1", Check: "SSH-002",
			State: store.IncidentEscalated, Runbook: "RB-SSH-001"},
		Agent: store.Agent{ID: "a1", Tenant: "t1", Tier: 2,
			Host: store.HostFacts{Hostname: "ehr-01"}},
		Tried:  []store.Command{{ID: "cmd-1", Runbook: "RB-SSH-001", Status: store.CommandFailed}},
		Reason: "remediation failed",
	}
}

func TestRetriesUntilTheReceiverAnswers(t *testing.T) {
	rcv := &receiver{t: t, failures: 3}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	n := newNotifier(t, srv.URL, secret, 5)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()
	n.Escalate(ctx, escalationFor())

	deadline := time.Now().Add(5 * time.Second)
	for {
		rcv.mu.Lock()
		got := len(rcv.docs)
		rcv.mu.Unlock()
		if got == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.requests != 4 || len(rcv.docs) != 1 || rcv.badSig != 0 {
		t.Fatalf("requests %d, delivered %d, bad signatures %d; want 4, 1, 0",
			rcv.requests, len(rcv.docs), rcv.badSig)
	}
	for _, id := range rcv.ids {
		if id != rcv.ids[0] || id == "" {
			t.Errorf("delivery ids %v, want one id across retries", rcv.ids)
		}
	}
	doc := rcv.docs[0]
	if doc.Incident.ID != "inc-1" || doc.Host.Hostname != "ehr-01" ||
		len(doc.Tried) != 1 || doc.Tried[0].Status != "failed" || len(doc.Evidence) != 3 ||
		doc.Reason != "remediation failed" {
		t.Errorf("document = %+v", doc)
	}
}

func TestGivesUpAfterAttemptsAndWrongSecretFails(t *testing.T) {
	rcv := &receiver{t: t}
	srv := httptest.NewServer(rcv)
	defer srv.Close()

	n := newNotifier(t, srv.URL, []byte("another-secret-of-16+"), 3)
	err := n.Deliver(context.Background(), documentOf(escalationFor(), time.Now()))
	if err == nil {
		t.Fatal("delivery with the wrong secret succeeded")
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.requests != 3 || rcv.badSig != 3 {
		t.Errorf("requests %d, bad signatures %d; want 3, 3", rcv.requests, rcv.badSig)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"x":1}`)
	now := time.Unix(1_800_000_000, 0)
	h := Sign(secret, now, body)
	tests := []struct {
		name   string
		header string
		body   []byte
		at     time.Time
		want   error
	}{
		{"good", h, body, now, nil},
		{"body changed", h, []byte(`{"x":2}`), now, ErrBadSignature},
		{"other key", Sign([]byte("other-key-0123456789"), now, body), body, now,
			ErrBadSignature},
		{"stale", h, body, now.Add(10 * time.Minute), ErrStale},
		{"garbage", "v1=zz", body, now, ErrBadSignature},
		{"empty", "", body, now, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(secret, tt.header, tt.body, tt.at, 5*time.Minute)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, c := range []Config{
		{Secret: secret, Log: log},
		{URL: "ftp://x", Secret: secret, Log: log},
		{URL: "http://127.0.0.1:1", Secret: []byte("short"), Log: log},
		{URL: "http://127.0.0.1:1", Secret: secret},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c.URL)
		}
	}
}
