package actions

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wardsec/ward/agent/internal/checks/checkstest"
	"github.com/wardsec/ward/agent/internal/hostfs"
	"github.com/wardsec/ward/agent/internal/svcpkg"
	"github.com/wardsec/ward/pkg/runbook"
)

func TestEvaluateBaselineRunsTheHookUnderTheCommand(t *testing.T) {
	fsys, err := hostfs.New(checkstest.Debian(t))
	if err != nil {
		t.Fatal(err)
	}
	type call struct {
		command string
		full    bool
	}
	var calls []call
	r := New(Config{FS: fsys, Services: svcpkg.New(fsys, svcpkg.FamilyDeb, discard()),
		Log: discard(), EvaluateBaseline: func(_ context.Context, id string,
			full bool) (EvaluationSummary, error) {
			calls = append(calls, call{id, full})
			if id == "cmd-broken" {
				return EvaluationSummary{}, errors.New("spool full")
			}
			return EvaluationSummary{Checks: 40, Reported: 2, Failing: 3, Full: full}, nil
		}})
	ctx := WithCommandID(context.Background(), "cmd-1")

	out, err := r.Run(ctx, runbook.ActionEvaluateBaseline, nil, false)
	if err != nil || out.Changed ||
		out.Output != "evaluated 40 checks, 3 failing; reported 2 changed checks" {
		t.Fatalf("evaluate: %+v, %v", out, err)
	}
	out, err = r.Run(ctx, runbook.ActionEvaluateBaseline, map[string]string{"full": "true"},
		false)
	if err != nil || !strings.Contains(out.Output, "reported all 2 checks") {
		t.Fatalf("full evaluate: %+v, %v", out, err)
	}
	if _, err := r.Run(ctx, runbook.ActionEvaluateBaseline, nil, true); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	want := []call{{"cmd-1", false}, {"cmd-1", true}}
	if len(calls) != len(want) || calls[0] != want[0] || calls[1] != want[1] {
		t.Fatalf("hook calls %v, want %v (a dry run evaluates nothing)", calls, want)
	}

	_, err = r.Run(ctx, runbook.ActionEvaluateBaseline, map[string]string{"full": "maybe"},
		false)
	if err == nil || !strings.Contains(err.Error(), `"maybe"`) {
		t.Errorf("full: maybe: %v, want it named", err)
	}
	_, err = r.Run(ctx, runbook.ActionEvaluateBaseline, map[string]string{"scope": "all"},
		false)
	if err == nil || !strings.Contains(err.Error(), "unknown parameter") {
		t.Errorf("unknown parameter: %v", err)
	}
	_, err = r.Run(WithCommandID(context.Background(), "cmd-broken"),
		runbook.ActionEvaluateBaseline, nil, false)
	if err == nil || !strings.Contains(err.Error(), "spool full") {
		t.Errorf("failed evaluation: %v, want its reason", err)
	}

	none := New(Config{FS: fsys, Services: svcpkg.New(fsys, svcpkg.FamilyDeb, discard()),
		Log: discard()})
	if _, err := none.Run(ctx, runbook.ActionEvaluateBaseline, nil, false); err == nil {
		t.Error("evaluate_baseline ran on an agent without an evaluator")
	}
}

// TestRotateCertificateFailsWithTheRenewal: the action reports success only when the
// renewal finished; its failure is the step's, with the reason.
func TestRotateCertificateFailsWithTheRenewal(t *testing.T) {
	fsys, err := hostfs.New(checkstest.Debian(t))
	if err != nil {
		t.Fatal(err)
	}
	renew := errors.New("renew: controller unreachable")
	r := New(Config{FS: fsys, Services: svcpkg.New(fsys, svcpkg.FamilyDeb, discard()),
		Log: discard(), RotateCertificate: func(context.Context) error { return renew }})
	out, err := r.Run(context.Background(), runbook.ActionRotateCertificate, nil, false)
	if !errors.Is(err, renew) || out.Changed {
		t.Fatalf("rotate_certificate with a failing renewal = %+v, %v", out, err)
	}
}
