package baselines

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/wardsec/ward/controller/internal/remediation"
	"github.com/wardsec/ward/pkg/baseline"
)

// refusingRecorder is a real Recorder that refuses every decision, as an evidence log
// that cannot append would.
type refusingRecorder struct{}

func (refusingRecorder) Record(context.Context, remediation.Decision) error {
	return errors.New("evidence: append: no space left on device")
}

// TestNothingChangesWithoutItsRecord: a push, an exclusion and an agent's reported
// version are kept only once their record is appended.
func TestNothingChangesWithoutItsRecord(t *testing.T) {
	m, snd, _, st := setup(t)
	m.cfg.Recorder = refusingRecorder{}
	ctx := context.Background()

	doc := bytes.Replace(baseline.ShippedDocument(), []byte("\nversion: 1.0.0\n"),
		[]byte("\nversion: 1.0.1\n"), 1)
	if _, err := m.Push(ctx, "t1", "b.yaml", doc, "alice"); !errors.Is(err,
		remediation.ErrEvidence) {
		t.Fatalf("Push = %v, want ErrEvidence", err)
	}
	if b, _, _ := m.Current(ctx, "t1"); b.Version != "1.0.0" || len(snd.sent) != 0 {
		t.Fatalf("after a refused push the tenant has %s; %d agents were sent it",
			b.Version, len(snd.sent))
	}

	if err := m.Exclude(ctx, "t1", "FW-001", "perimeter firewall", "alice"); !errors.Is(err,
		remediation.ErrEvidence) {
		t.Fatalf("Exclude = %v, want ErrEvidence", err)
	}
	if m.Excluded(ctx, "t1", "FW-001") {
		t.Fatal("an exclusion whose record failed is in force")
	}

	if err := m.Reported(ctx, "t1", "a1", "1.0.0"); !errors.Is(err,
		remediation.ErrEvidence) {
		t.Fatalf("Reported = %v, want ErrEvidence", err)
	}
	if v, _ := st.AgentBaseline(ctx, "t1", "a1"); v != "" {
		t.Fatalf("the agent's version %q was stored without its record", v)
	}
}
