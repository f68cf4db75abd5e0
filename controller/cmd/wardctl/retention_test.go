package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardsec/ward/controller/internal/evidence"
)

// TestEvidenceArchivePruneVerify drives the retention commands against a real controller
// over mTLS: archive writes a file that verifies, archives lists it, prune refuses records
// within the retention period and removes them past it, and the live log exported after
// the prune verifies on its own and, with --after, as the archive's continuation; a
// changed archive or the wrong order fails.
func TestEvidenceArchivePruneVerify(t *testing.T) {
	c := newCLI(t)
	ev := c.e.ServeEvidence()
	c.env["WARD_CONTROLLER"] = ev.Addr
	c.e.Tenant("clinic")
	ctx := context.Background()
	for range 5 {
		_, err := ev.Log.Record(ctx, evidence.Entry{Tenant: "clinic",
			Type: evidence.TypeTokenCreated, Subject: "tok",
			Actor: evidence.Actor{Kind: evidence.ActorOperator, ID: "admin"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ev.Checkpointer.Checkpoint(ctx, "clinic"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	arch, live := filepath.Join(dir, "archive.tar.gz"), filepath.Join(dir, "live.tar.gz")
	ca := c.env["WARD_CA"]
	before := time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano)

	out, errOut, code := c.run("evidence", "archive", "--tenant", "clinic", "--before",
		before, "-o", arch)
	if code != 0 || !strings.Contains(out, "records 1 to 5") ||
		!strings.Contains(errOut, "records: ") {
		t.Fatalf("archive: exit %d\n%s\n%s", code, out, errOut)
	}
	if out := c.ok("evidence", "verify", arch, "--ca", ca); !strings.Contains(out, ": OK") {
		t.Errorf("verify archive:\n%s", out)
	}
	if out := c.ok("evidence", "archives", "--tenant", "clinic"); !strings.Contains(out,
		"live") || !strings.Contains(out, "pruned through record 0") {
		t.Errorf("archives:\n%s", out)
	}

	_, errOut, code = c.run("evidence", "prune", "--tenant", "clinic")
	if code == 0 || !strings.Contains(errOut, "failed precondition") ||
		!strings.Contains(errOut, "6 years") {
		t.Errorf("prune within retention: exit %d: %s", code, errOut)
	}
	ev.SetNow(time.Now().AddDate(6, 0, 1))
	if out := c.ok("evidence", "prune", "--tenant", "clinic"); !strings.Contains(out,
		"pruned 5 records") {
		t.Errorf("prune:\n%s", out)
	}
	var list struct {
		Archives      []struct{ File string }
		PrunedThrough string `json:"pruned_through"`
	}
	out = c.ok("-o", "json", "evidence", "archives", "--tenant", "clinic")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Archives) != 1 ||
		list.PrunedThrough != "5" {
		t.Errorf("archives -o json: %v\n%s", err, out)
	}

	c.ok("evidence", "export", "--tenant", "clinic", "-o", live)
	if out := c.ok("evidence", "verify", live, "--ca", ca); !strings.Contains(out, ": OK") ||
		!strings.Contains(out, "starts after: record 5") {
		t.Errorf("verify live:\n%s", out)
	}
	out = c.ok("evidence", "verify", live, "--ca", ca, "--after", arch)
	if !strings.Contains(out, "continuity:") {
		t.Errorf("verify --after:\n%s", out)
	}
	t.Logf("wardctl evidence verify %s --after %s:\n%s", live, arch, out)
	if _, errOut, code := c.run("evidence", "verify", arch, "--ca", ca, "--after",
		live); code == 0 || !strings.Contains(errOut, "FAILED") {
		t.Errorf("verify in the wrong order: exit %d: %s", code, errOut)
	}

	data, err := os.ReadFile(arch)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(arch, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := c.run("evidence", "verify", live, "--ca", ca, "--after",
		arch); code == 0 || !strings.Contains(errOut, "FAILED") {
		t.Errorf("verify after a changed archive: exit %d: %s", code, errOut)
	}
}
