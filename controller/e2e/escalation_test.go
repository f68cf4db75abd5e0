package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/controller/internal/escalation"
)

// TestEscalationWebhook runs the real controller with a webhook pointing at a local
// receiver that refuses the first delivery: an operator escalates a tier-3 agent's
// incident with wardctl, the controller retries, and the delivery that gets through
// carries the incident, the host and a signature that verifies with the shared key.
func TestEscalationWebhook(t *testing.T) {
	secret := []byte("e2e-webhook-secret-0123456789")
	var (
		mu       sync.Mutex
		attempts int
		docs     []escalation.Document
	)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if attempts == 1 {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		err := escalation.Verify(secret, r.Header.Get(escalation.SignatureHeader), body,
			time.Now(), time.Minute)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var doc escalation.Document
		if err := json.Unmarshal(body, &doc); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		docs = append(docs, doc)
	}))
	defer rcv.Close()

	in := newInstallation(t, time.Second)
	secretFile := filepath.Join(in.dir, "webhook.key")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	in.serveArgs = []string{"--webhook-url", rcv.URL, "--webhook-secret-file", secretFile}
	in.startController()
	in.wardctl("tenant", "create", "clinic-a")

	pacs := in.enroll("pacs", in.token("clinic-a", "--tier", "3"))
	pacs.prepareHost("--password-ssh")
	pacs.start()
	defer pacs.run.kill(syscall.SIGTERM)

	waiting := in.incidentIn(pacs.id, "SSH-002", "awaiting_approval", 60*time.Second)
	in.wardctl("incident", "escalate", waiting.ID, "--reason", "needs the clinic's okay")
	in.incidentIn(pacs.id, "SSH-002", "escalated", 10*time.Second)

	waitFor(t, 30*time.Second, "a verified webhook delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(docs) == 1
	})
	mu.Lock()
	defer mu.Unlock()
	doc := docs[0]
	if attempts < 2 || doc.Incident.ID != waiting.ID || doc.Incident.Check != "SSH-002" ||
		doc.Host.Agent != pacs.id || doc.Host.Tier != 3 ||
		doc.Reason != "needs the clinic's okay" || len(doc.Evidence) == 0 {
		t.Errorf("after %d attempts, delivered %+v", attempts, doc)
	}
}
