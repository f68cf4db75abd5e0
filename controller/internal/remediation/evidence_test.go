package remediation

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/wardsec/ward/controller/internal/store"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// failingRecorder is a real Recorder that refuses the decisions whose action it is told
// to, as an evidence log that cannot append (disk full, log closed) would, and keeps the
// others in the harness's recorder.
type failingRecorder struct {
	next *recorder

	mu   sync.Mutex
	fail map[string]bool // actions refused
}

func (f *failingRecorder) Record(ctx context.Context, d Decision) error {
	f.mu.Lock()
	refused := f.fail[d.Action]
	f.mu.Unlock()
	if refused {
		return errors.New("evidence: append: no space left on device")
	}
	return f.next.Record(ctx, d)
}

func (f *failingRecorder) refuse(actions ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = map[string]bool{}
	for _, a := range actions {
		f.fail[a] = true
	}
}

func newFailingHarness(t *testing.T) (*harness, *failingRecorder) {
	fr := &failingRecorder{}
	h := newHarness(t, func(c *Config) {
		fr.next = c.Recorder.(*recorder)
		c.Recorder = fr
	})
	return h, fr
}

// TestNoActionWithoutItsRecord: when the evidence log refuses a decision, the action it
// records is not taken (no command stored or sent, no escalation handed over, no state
// change), the caller gets ErrEvidence, and the controller's own remediation is tried
// again at the next sweep once the log works.
func TestNoActionWithoutItsRecord(t *testing.T) {
	ctx := context.Background()

	t.Run("automatic remediation", func(t *testing.T) {
		h, fr := newFailingHarness(t)
		h.send.connect("a1")
		for _, refused := range []string{"auto_remediated", "command_issued"} {
			fr.refuse(refused)
			err := h.engine.HandleDrift(ctx, "t1", "a1", &wardv1.DriftReport{
				Results: []*wardv1.CheckResult{{CheckId: "SSH-002", State: fail}}})
			if !errors.Is(err, ErrEvidence) {
				t.Fatalf("%s refused: HandleDrift = %v, want ErrEvidence", refused, err)
			}
			cmds, _ := h.st.UnfinishedCommands(ctx, "t1", "a1")
			if len(cmds) != 0 || len(h.send.commands("a1")) != 0 {
				t.Fatalf("%s refused: %d commands stored, %d sent; want none", refused,
					len(cmds), len(h.send.commands("a1")))
			}
			inc, err := h.st.UnresolvedIncident(ctx, "t1", "a1", "SSH-002")
			if err != nil {
				t.Fatal(err)
			}
			if inc.State != store.IncidentOpen || inc.Runbook != "RB-SSH-001" ||
				!strings.Contains(inc.Reason, "evidence log") {
				t.Fatalf("%s refused: incident %s runbook %q reason %q", refused, inc.State,
					inc.Runbook, inc.Reason)
			}
			// A pass then a failure again, for the next round: the incident resolves
			// only once its record is appended.
			fr.refuse()
			h.drift("a1", "", map[string]wardv1.CheckState{"SSH-002": pass})
		}

		fr.refuse("auto_remediated")
		err := h.engine.HandleDrift(ctx, "t1", "a1", &wardv1.DriftReport{
			Results: []*wardv1.CheckResult{{CheckId: "SSH-002", State: fail}}})
		if !errors.Is(err, ErrEvidence) {
			t.Fatal(err)
		}
		if len(h.send.commands("a1")) != 0 {
			t.Fatal("a command went out without its record")
		}
		fr.refuse()
		if err := h.engine.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		inc, err := h.st.UnresolvedIncident(ctx, "t1", "a1", "SSH-002")
		if err != nil {
			t.Fatal(err)
		}
		if inc.State != store.IncidentRemediating || len(h.send.commands("a1")) != 1 {
			t.Fatalf("after the log recovered and a sweep: %s, %d commands sent", inc.State,
				len(h.send.commands("a1")))
		}
		want := []string{"incident_opened", "auto_remediated", "command_issued"}
		if got := h.rec.actions(inc.ID); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("recorded %v, want %v", got, want)
		}
	})

	t.Run("operator approval", func(t *testing.T) {
		h, fr := newFailingHarness(t)
		h.send.connect("a3")
		h.drift("a3", "", map[string]wardv1.CheckState{"SSH-002": fail}) // tier 3
		waiting := h.incident("a3", "SSH-002")
		fr.refuse("approved")
		_, err := h.engine.Approve(ctx, waiting.ID, "alice")
		if !errors.Is(err, ErrEvidence) {
			t.Fatalf("Approve = %v, want ErrEvidence", err)
		}
		inc := h.incident("a3", "SSH-002")
		if inc.State != store.IncidentAwaitingApproval || inc.ApprovedBy != "" ||
			len(inc.Commands) != 0 || len(h.send.commands("a3")) != 0 {
			t.Fatalf("after a refused approval: %s approved by %q, %d commands, %d sent",
				inc.State, inc.ApprovedBy, len(inc.Commands), len(h.send.commands("a3")))
		}
		if err := h.engine.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if len(h.send.commands("a3")) != 0 {
			t.Fatal("a sweep carried out an approval whose record failed")
		}
	})

	t.Run("escalation and resolution", func(t *testing.T) {
		h, fr := newFailingHarness(t)
		h.drift("a3", "", map[string]wardv1.CheckState{"SSH-002": fail})
		inc := h.incident("a3", "SSH-002")
		fr.refuse("escalated", "resolved")
		if _, err := h.engine.Escalate(ctx, inc.ID, "alice", "site visit"); !errors.Is(err,
			ErrEvidence) {
			t.Fatalf("Escalate = %v, want ErrEvidence", err)
		}
		if _, err := h.engine.Resolve(ctx, inc.ID, "alice", "fixed by hand"); !errors.Is(err,
			ErrEvidence) {
			t.Fatalf("Resolve = %v, want ErrEvidence", err)
		}
		err := h.engine.HandleDrift(ctx, "t1", "a3", &wardv1.DriftReport{
			Results: []*wardv1.CheckResult{{CheckId: "SSH-002", State: pass}}})
		if !errors.Is(err, ErrEvidence) {
			t.Fatalf("a passing report while resolutions are refused: %v", err)
		}
		if got := h.incident("a3", "SSH-002"); got.State != store.IncidentAwaitingApproval ||
			h.esc.count() != 0 {
			t.Fatalf("after refused records: %s, %d escalations handed over", got.State,
				h.esc.count())
		}
		fr.refuse()
		if _, err := h.engine.Escalate(ctx, inc.ID, "alice", "site visit"); err != nil ||
			h.esc.count() != 1 {
			t.Fatalf("Escalate once the log works: %v, %d escalations", err, h.esc.count())
		}
	})

	t.Run("command result", func(t *testing.T) {
		h, fr := newFailingHarness(t)
		h.send.connect("a1")
		h.drift("a1", "", map[string]wardv1.CheckState{"SSH-002": fail})
		cmd := h.incident("a1", "SSH-002").Commands[0]
		fr.refuse("command_result")
		err := h.result("a1", cmd, wardv1.CommandStatus_COMMAND_STATUS_FAILED)
		if !errors.Is(err, ErrEvidence) {
			t.Fatalf("HandleResult = %v, want ErrEvidence", err)
		}
		c, _ := h.st.GetCommand(ctx, cmd)
		if c.Status.Finished() || h.esc.count() != 0 {
			t.Fatalf("after a refused result record: command %s, %d escalations", c.Status,
				h.esc.count())
		}
	})

	t.Run("owned command and evaluation", func(t *testing.T) {
		h, fr := newFailingHarness(t)
		h.send.connect("a1")
		fr.refuse("command_issued")
		_, err := h.engine.IssueOwned(ctx, OwnedCommand{Tenant: "t1", Agent: "a1",
			Owner: "test", Name: "install", Steps: []Step{{Action: "bootstrap_agent"}}})
		if !errors.Is(err, ErrEvidence) {
			t.Fatalf("IssueOwned = %v, want ErrEvidence", err)
		}
		_, err = h.engine.RequestEvaluation(ctx, EvaluateParams{Agent: "a1", Actor: "alice"})
		if !errors.Is(err, ErrEvidence) {
			t.Fatalf("RequestEvaluation = %v, want ErrEvidence", err)
		}
		cmds, _ := h.st.UnfinishedCommands(ctx, "t1", "a1")
		if len(cmds) != 0 || len(h.send.commands("a1")) != 0 {
			t.Fatalf("%d commands stored, %d sent; want none", len(cmds),
				len(h.send.commands("a1")))
		}
	})
}
