package drift

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardsec/ward/agent/internal/checks"
	"github.com/wardsec/ward/agent/internal/checks/checkstest"
	"github.com/wardsec/ward/agent/internal/hostfs"
	"github.com/wardsec/ward/agent/internal/logtest"
	"github.com/wardsec/ward/agent/internal/svcpkg"
	"github.com/wardsec/ward/pkg/baseline"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sink keeps the drift reports it is given; with fail set it refuses them.
type sink struct {
	mu      sync.Mutex
	reports []*wardv1.DriftReport
	fail    bool
	got     chan struct{}
}

func newSink() *sink { return &sink{got: make(chan struct{}, 100)} }

func (s *sink) Enqueue(req *wardv1.ConnectRequest) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return 0, errors.New("spool full")
	}
	s.reports = append(s.reports, req.GetDriftReport())
	s.got <- struct{}{}
	return uint64(len(s.reports)), nil
}

// take returns the reports received since the last take.
func (s *sink) take() []*wardv1.DriftReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reports
	s.reports = nil
	return r
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	root, statePath string
	fs              *hostfs.FS
	sink            *sink
	clock           *clock
	base            *baseline.Baseline
	eval            *checks.Evaluator
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := checkstest.Debian(t)
	fsys, err := hostfs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	b, err := baseline.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	log := logtest.New(t)
	return &fixture{
		root: root, statePath: filepath.Join(t.TempDir(), StateFile), fs: fsys,
		sink:  newSink(),
		clock: &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)},
		base:  b,
		eval: checks.New(checks.Config{FS: fsys,
			Services: svcpkg.New(fsys, svcpkg.FamilyDeb, log), Log: log}),
	}
}

func (f *fixture) loop(t *testing.T, mod func(*Config)) *Loop {
	t.Helper()
	cfg := Config{Evaluator: f.eval, Baseline: func() *baseline.Baseline { return f.base },
		Sink: f.sink, StatePath: f.statePath, Now: f.clock.Now, Log: logtest.New(t)}
	if mod != nil {
		mod(&cfg)
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// enablePasswordSSH makes SSH-002 fail on the prepared tree.
func (f *fixture) enablePasswordSSH(t *testing.T, on bool) {
	t.Helper()
	path := filepath.Join(f.root, "etc/ssh/sshd_config")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	from, to := "PasswordAuthentication no\nKbd", "PasswordAuthentication yes\nKbd"
	if !on {
		from, to = to, from
	}
	out := strings.Replace(string(data), from, to, 1)
	if out == string(data) {
		t.Fatalf("sshd_config does not hold %q", from)
	}
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
}

func resultOf(r *wardv1.DriftReport, id string) *wardv1.CheckResult {
	for _, c := range r.GetResults() {
		if c.GetCheckId() == id {
			return c
		}
	}
	return nil
}

func one(t *testing.T, s *sink) *wardv1.DriftReport {
	t.Helper()
	got := s.take()
	if len(got) != 1 {
		t.Fatalf("got %d reports, want 1", len(got))
	}
	return got[0]
}

func TestFirstRunIsFullThenOnlyChanges(t *testing.T) {
	f := newFixture(t)
	l := f.loop(t, nil)
	ctx := context.Background()
	start := f.clock.Now()

	if err := l.Evaluate(ctx, TriggerStart); err != nil {
		t.Fatal(err)
	}
	r := one(t, f.sink)
	if !r.GetFullSnapshot() || len(r.GetResults()) != len(f.base.Checks) {
		t.Fatalf("first run: full=%v with %d results, want a full snapshot of %d checks",
			r.GetFullSnapshot(), len(r.GetResults()), len(f.base.Checks))
	}
	if r.GetTrigger() != TriggerStart || r.GetBaselineId() != "hipaa-v1" ||
		r.GetBaselineVersion() != f.base.Version {
		t.Errorf("report names trigger %q, baseline %s %s", r.GetTrigger(),
			r.GetBaselineId(), r.GetBaselineVersion())
	}
	if c := resultOf(r, "SSH-002"); c.GetState() != wardv1.CheckState_CHECK_STATE_PASS ||
		!c.GetSince().AsTime().Equal(start) {
		t.Fatalf("SSH-002 = %v since %v, want pass since %v", c.GetState(),
			c.GetSince().AsTime(), start)
	}

	f.clock.Advance(15 * time.Minute)
	if err := l.Evaluate(ctx, TriggerSchedule); err != nil {
		t.Fatal(err)
	}
	if got := f.sink.take(); len(got) != 0 {
		t.Fatalf("nothing changed, yet %d reports were sent", len(got))
	}

	f.enablePasswordSSH(t, true)
	f.clock.Advance(15 * time.Minute)
	changedAt := f.clock.Now()
	if err := l.Evaluate(ctx, TriggerSchedule); err != nil {
		t.Fatal(err)
	}
	r = one(t, f.sink)
	if r.GetFullSnapshot() || len(r.GetResults()) != 1 {
		t.Fatalf("after one change: full=%v with %d results, want only SSH-002",
			r.GetFullSnapshot(), len(r.GetResults()))
	}
	c := resultOf(r, "SSH-002")
	if c.GetState() != wardv1.CheckState_CHECK_STATE_FAIL ||
		!c.GetSince().AsTime().Equal(changedAt) || !strings.Contains(c.GetObserved(), "yes") {
		t.Fatalf("SSH-002 = %v since %v observed %q, want fail since %v observing yes",
			c.GetState(), c.GetSince().AsTime(), c.GetObserved(), changedAt)
	}
}

func TestSinceSurvivesRestart(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.enablePasswordSSH(t, true)
	failedAt := f.clock.Now()
	if err := f.loop(t, nil).Evaluate(ctx, TriggerStart); err != nil {
		t.Fatal(err)
	}
	f.sink.take()

	// A new loop on the same state file: the agent restarted an hour later.
	f.clock.Advance(time.Hour)
	l := f.loop(t, nil)
	if err := l.Evaluate(ctx, TriggerStart); err != nil {
		t.Fatal(err)
	}
	if got := f.sink.take(); len(got) != 0 {
		t.Fatalf("restart with nothing changed sent %d reports", len(got))
	}

	f.clock.Advance(23 * time.Hour) // the daily snapshot is due
	if err := l.Evaluate(ctx, TriggerSchedule); err != nil {
		t.Fatal(err)
	}
	r := one(t, f.sink)
	if !r.GetFullSnapshot() {
		t.Fatal("no full snapshot a day after the last one")
	}
	if c := resultOf(r, "SSH-002"); !c.GetSince().AsTime().Equal(failedAt) {
		t.Fatalf("SSH-002 since %v after restart, want %v", c.GetSince().AsTime(), failedAt)
	}
}

func TestBaselineChangeSendsFullSnapshot(t *testing.T) {
	f := newFixture(t)
	l := f.loop(t, nil)
	ctx := context.Background()
	if err := l.Evaluate(ctx, TriggerStart); err != nil {
		t.Fatal(err)
	}
	f.sink.take()

	next := *f.base
	next.Version = "1.0.1"
	next.Checks = f.base.Checks[:10]
	f.base = &next
	if err := l.Evaluate(ctx, TriggerBaseline); err != nil {
		t.Fatal(err)
	}
	r := one(t, f.sink)
	if !r.GetFullSnapshot() || len(r.GetResults()) != 10 || r.GetBaselineVersion() != "1.0.1" {
		t.Fatalf("after a baseline change: full=%v, %d results, version %s; want a full "+
			"snapshot of 10 checks of 1.0.1", r.GetFullSnapshot(), len(r.GetResults()),
			r.GetBaselineVersion())
	}
}

func TestUndeliveredChangeIsReportedAgain(t *testing.T) {
	f := newFixture(t)
	l := f.loop(t, nil)
	ctx := context.Background()
	if err := l.Evaluate(ctx, TriggerStart); err != nil {
		t.Fatal(err)
	}
	f.sink.take()

	f.enablePasswordSSH(t, true)
	f.sink.fail = true
	if err := l.Evaluate(ctx, TriggerSchedule); err == nil {
		t.Fatal("Evaluate succeeded although the sink refused the report")
	}
	f.sink.fail = false
	if err := l.Evaluate(ctx, TriggerSchedule); err != nil {
		t.Fatal(err)
	}
	r := one(t, f.sink)
	if c := resultOf(r, "SSH-002"); c.GetState() != wardv1.CheckState_CHECK_STATE_FAIL {
		t.Fatalf("the refused change was not reported again: %v", r.GetResults())
	}
}

func TestVerifyReportsNamedChecksWithCommand(t *testing.T) {
	f := newFixture(t)
	l := f.loop(t, nil)
	ctx := context.Background()
	if err := l.Evaluate(ctx, TriggerStart); err != nil {
		t.Fatal(err)
	}
	f.sink.take()

	// Unchanged checks are reported too: the controller waits for them.
	if err := l.Verify(ctx, "cmd-1", []string{"SSH-002", "SSH-001", "NOPE-999"}); err != nil {
		t.Fatal(err)
	}
	r := one(t, f.sink)
	if r.GetCommandId() != "cmd-1" || r.GetTrigger() != TriggerVerify || len(r.GetResults()) != 2 {
		t.Fatalf("verification report: command %q trigger %q with %d results", r.GetCommandId(),
			r.GetTrigger(), len(r.GetResults()))
	}

	// A verification that saw a change leaves nothing for the next evaluation to report.
	f.enablePasswordSSH(t, true)
	if err := l.Verify(ctx, "cmd-2", []string{"SSH-002"}); err != nil {
		t.Fatal(err)
	}
	f.sink.take()
	if err := l.Evaluate(ctx, TriggerSchedule); err != nil {
		t.Fatal(err)
	}
	if got := f.sink.take(); len(got) != 0 {
		t.Fatalf("a change already verified was reported again: %v", got[0].GetResults())
	}
}

func TestRunEvaluatesAtStartOnScheduleAndOnRequest(t *testing.T) {
	f := newFixture(t)
	l := f.loop(t, func(c *Config) { c.Interval, c.Jitter = 200*time.Millisecond, -1 })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()

	wait := func(what string) *wardv1.DriftReport {
		t.Helper()
		select {
		case <-f.sink.got:
			return one(t, f.sink)
		case <-time.After(10 * time.Second):
			t.Fatalf("no report %s", what)
		}
		return nil
	}
	if r := wait("at start"); r.GetTrigger() != TriggerStart {
		t.Fatalf("first report's trigger %q", r.GetTrigger())
	}

	f.enablePasswordSSH(t, true)
	if r := wait("on schedule"); r.GetTrigger() != TriggerSchedule {
		t.Fatalf("trigger %q, want schedule", r.GetTrigger())
	}

	f.enablePasswordSSH(t, false)
	l.Request(TriggerRequest)
	l.Request(TriggerBaseline)
	r := wait("on request")
	if r.GetTrigger() != TriggerBaseline && r.GetTrigger() != TriggerSchedule {
		t.Fatalf("trigger %q, want baseline (merged requests) or schedule", r.GetTrigger())
	}
}

func TestWireScrubsAndBounds(t *testing.T) {
	tests := []struct {
		name     string
		observed string
		absent   string
		maxLen   int
	}{
		{"patient name", "line 3: Patient: John Smith", "John Smith", MaxObserved},
		{"medical record", "banner MRN: 48213377", "48213377", MaxObserved},
		{"long value", strings.Repeat("é", 2*MaxObserved), "", MaxObserved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := wire(checks.Result{CheckID: "X-001", State: checks.Fail,
				Observed: tt.observed, Message: tt.observed}, time.Unix(0, 0))
			for _, s := range []string{w.GetObserved(), w.GetMessage()} {
				if tt.absent != "" && strings.Contains(s, tt.absent) {
					t.Errorf("%q kept %q", s, tt.absent)
				}
				if len(s) > tt.maxLen {
					t.Errorf("length %d, want at most %d", len(s), tt.maxLen)
				}
				if s != strings.ToValidUTF8(s, "?") {
					t.Errorf("cut inside a character")
				}
			}
		})
	}
}

// TestEvaluateRequestedReportsAtOnceUnderItsCommand is an operator's `wardctl check run`
// on the agent: the evaluation runs now, its report carries trigger "request" and the
// command's id, holds the changed checks only (none: no report), or every check when a
// full snapshot is asked for.
func TestEvaluateRequestedReportsAtOnceUnderItsCommand(t *testing.T) {
	f := newFixture(t)
	l := f.loop(t, nil)
	ctx := context.Background()
	if err := l.Evaluate(ctx, TriggerStart); err != nil {
		t.Fatal(err)
	}
	first := f.sink.take()
	if len(first) != 1 || !first[0].GetFullSnapshot() {
		t.Fatalf("start: %d reports, want one full snapshot", len(first))
	}
	all := len(first[0].GetResults())

	sum, err := l.EvaluateRequested(ctx, "cmd-1", false)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Reported != 0 || sum.Checks != all || len(f.sink.take()) != 0 {
		t.Fatalf("nothing changed: summary %+v, want no report of %d checks", sum, all)
	}

	f.enablePasswordSSH(t, true)
	sum, err = l.EvaluateRequested(ctx, "cmd-2", false)
	if err != nil {
		t.Fatal(err)
	}
	got := f.sink.take()
	if len(got) != 1 || sum.Reported != 1 || sum.Full || sum.Failing < 1 {
		t.Fatalf("SSH-002 turned failing: %d reports, summary %+v", len(got), sum)
	}
	r := got[0]
	if r.GetTrigger() != TriggerRequest || r.GetCommandId() != "cmd-2" ||
		r.GetResults()[0].GetCheckId() != "SSH-002" ||
		r.GetResults()[0].GetState() != wardv1.CheckState_CHECK_STATE_FAIL {
		t.Fatalf("report: trigger %q command %q results %v", r.GetTrigger(),
			r.GetCommandId(), r.GetResults())
	}

	sum, err = l.EvaluateRequested(ctx, "cmd-3", true)
	if err != nil {
		t.Fatal(err)
	}
	got = f.sink.take()
	if len(got) != 1 || !got[0].GetFullSnapshot() || len(got[0].GetResults()) != all ||
		!sum.Full || got[0].GetCommandId() != "cmd-3" {
		t.Fatalf("full request: %d reports, summary %+v", len(got), sum)
	}

	f.sink.mu.Lock()
	f.sink.fail = true
	f.sink.mu.Unlock()
	f.enablePasswordSSH(t, false)
	if _, err := l.EvaluateRequested(ctx, "cmd-4", false); err == nil ||
		!strings.Contains(err.Error(), "spool full") {
		t.Fatalf("a report the spool refused: %v, want the refusal", err)
	}
}
