package baseline

import (
	"os"
	"slices"
	"testing"

	"github.com/wardsec/ward/pkg/runbook"
)

func TestShipped(t *testing.T) {
	b, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != "hipaa-v1" || b.Version == "" {
		t.Errorf("id %q version %q", b.ID, b.Version)
	}
	if len(b.Checks) < 40 {
		t.Errorf("hipaa-v1 has %d checks, want at least 40", len(b.Checks))
	}

	perPlatform := map[Platform]int{}
	for _, c := range b.Checks {
		for _, p := range c.Platforms {
			perPlatform[p]++
		}
	}
	for _, p := range []Platform{PlatformDebian, PlatformRHEL, PlatformNixOS} {
		if perPlatform[p] < 30 {
			t.Errorf("%s: %d checks, want at least 30", p, perPlatform[p])
		}
	}
}

// The plain file beside the package is the document that is embedded.
func TestShippedIsThePlainFile(t *testing.T) {
	data, err := os.ReadFile(ShippedName)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(ShippedDocument()) {
		t.Error("embedded document differs from the file")
	}
}

// Every runbook a check names exists, answers that check, and every shipped runbook that
// answers checks is used by one.
func TestShippedRunbooksMatchChecks(t *testing.T) {
	b, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	set, err := runbook.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	if len(set) < 10 {
		t.Errorf("%d shipped runbooks, want at least 10", len(set))
	}
	for _, c := range b.Checks {
		if !c.HasRunbook() {
			continue
		}
		if !slices.Contains(set[c.Runbook].Answers, c.ID) {
			t.Errorf("%s names %s, which does not answer it", c.ID, c.Runbook)
		}
	}
	for _, r := range set {
		for _, a := range r.Answers {
			if c := b.Check(a); c == nil {
				t.Errorf("%s answers unknown check %s", r.ID, a)
			}
		}
		for _, s := range r.Steps {
			if s.Action == runbook.ActionRestoreFile && b.ManagedFile(s.Params["path"]) == nil {
				t.Errorf("%s restores %s, which the baseline does not manage",
					r.ID, s.Params["path"])
			}
		}
	}
}
