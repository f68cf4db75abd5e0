package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/pkg/evidence"
)

// TestEvidenceSurvivesKillDuringAdminBurst kills the controller with SIGKILL while
// operators create tokens, restarts it, and checks that the exported bundle verifies and
// that every acknowledged action is recorded (an action may be recorded and not
// acknowledged, never the reverse), then that a changed byte is caught by name.
func TestEvidenceSurvivesKillDuringAdminBurst(t *testing.T) {
	in := newInstallation(t, 5*time.Second)
	in.startController()
	in.wardctl("tenant", "create", "clinic")

	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				out, _, err := in.wardctlAs("admin", "-o", "json", "token", "create",
					"--tenant", "clinic")
				if err != nil {
					continue // refused or cut off by the kill: not acknowledged
				}
				var resp struct {
					Token struct{ ID string } `json:"token"`
				}
				if json.Unmarshal([]byte(out), &resp) == nil && resp.Token.ID != "" {
					mu.Lock()
					acked = append(acked, resp.Token.ID)
					mu.Unlock()
				}
			}
		}()
	}
	waitFor(t, 30*time.Second, "a few acknowledged token creations", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 5
	})
	in.ctl.kill(syscall.SIGKILL)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	in.startController()
	bundle := filepath.Join(in.dir, "clinic.tar.gz")
	in.wardctl("evidence", "export", "--tenant", "clinic", "-o", bundle)
	out := in.wardctl("evidence", "verify", bundle, "--ca", filepath.Join(in.data, "ca.pem"))
	if !strings.Contains(out, ": OK") || !strings.Contains(out, "tenant:       clinic") {
		t.Fatalf("verify output:\n%s", out)
	}
	t.Logf("after the kill, %d acknowledged creations:\n%s", len(acked), out)

	f, err := os.Open(bundle)
	if err != nil {
		t.Fatal(err)
	}
	b, err := evidence.ReadBundle(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSpace(b.Files[evidence.FileRecords]), []byte("\n")) {
		body, _, err := evidence.SplitLine(line)
		if err != nil {
			t.Fatal(err)
		}
		r, err := evidence.ParseBody(body)
		if err != nil {
			t.Fatal(err)
		}
		if r.Type == "token.created" {
			recorded[r.Subject] = true
		}
	}
	for _, id := range acked {
		if !recorded[id] {
			t.Errorf("token %s was acknowledged but is not in the evidence log", id)
		}
	}
	tokens := in.wardctl("-o", "json", "token", "list", "--tenant", "clinic")
	for id := range recorded {
		if !strings.Contains(tokens, `"`+id+`"`) {
			t.Errorf("token %s is recorded but does not exist", id)
		}
	}

	// one changed byte inside a record is named by the verifier
	lines := bytes.Split(b.Files[evidence.FileRecords], []byte("\n"))
	lines[2] = bytes.Replace(lines[2], []byte(`"token.created"`), []byte(`"token.createe"`), 1)
	b.Files[evidence.FileRecords] = bytes.Join(lines, []byte("\n"))
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(in.dir, "tampered.tar.gz")
	if err := os.WriteFile(tampered, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := in.wardctlAs("admin", "evidence", "verify", tampered, "--ca",
		filepath.Join(in.data, "ca.pem"))
	if err == nil || !strings.Contains(stderr, "record 3: hash does not match") {
		t.Errorf("verify of a tampered bundle: err %v, stderr %q", err, stderr)
	}
}
