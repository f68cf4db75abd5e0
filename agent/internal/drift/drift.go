// Package drift evaluates the baseline in force on the agent and reports what changed.
// A Loop evaluates when it starts, on a schedule (15 minutes with jitter by default),
// when asked (a new baseline, an operator's request) and after a command, for the checks
// the command names. It reports only the checks whose state changed, except for a full
// snapshot on the first run, after a baseline change and once a day. Each result carries
// the observed value, scrubbed of anything that looks like patient data and bounded, and
// since, the time the check entered its state; states and their since times are kept in a
// file of the state directory so they survive restarts.
package drift

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/agent/internal/checks"
	"github.com/wardsec/ward/pkg/baseline"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/scrub"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Triggers: why an evaluation ran (DriftReport.trigger).
const (
	TriggerStart    = "start"
	TriggerSchedule = "schedule"
	TriggerBaseline = "baseline"
	TriggerRequest  = "request"
	TriggerVerify   = "verify"
)

// Defaults for Config.
const (
	DefaultInterval      = 15 * time.Minute
	DefaultSnapshotEvery = 24 * time.Hour

	// MaxObserved bounds a result's observed value and message, in bytes.
	MaxObserved = 1024
)

// Evaluator evaluates a baseline's checks (checks.Evaluator implements it).
type Evaluator interface {
	// Baseline evaluates every check of b, or only ids when given, in order.
	Baseline(ctx context.Context, b *baseline.Baseline, ids ...string) []checks.Result
}

// Sink takes drift reports for the controller (client.Client implements it). Enqueue
// must make the message durable before it returns.
type Sink interface {
	Enqueue(req *wardv1.ConnectRequest) (uint64, error)
}

// Config configures New. Fields without a default are required.
type Config struct {
	// Evaluator runs the checks.
	Evaluator Evaluator
	// Baseline returns the baseline in force at each evaluation; never nil.
	Baseline func() *baseline.Baseline
	// Sink receives the reports.
	Sink Sink
	// StatePath is the file (in the state directory) keeping each check's state and since.
	StatePath string
	// Interval is the schedule; zero means 15 minutes. Each wait is the interval plus or
	// minus up to Jitter.
	Interval time.Duration
	// Jitter spreads scheduled evaluations; zero means a tenth of Interval, negative none.
	Jitter time.Duration
	// SnapshotEvery is how often a full snapshot is sent; zero means daily.
	SnapshotEvery time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Log receives evaluations and problems.
	Log *slog.Logger
}

// Loop is the agent's drift detector. Create it with New and run it with Run (once).
// Request and Verify are safe for concurrent use with Run and each other; evaluations
// never overlap.
type Loop struct {
	cfg Config
	log *slog.Logger

	wake chan struct{} // capacity 1: a request is pending

	mu      sync.Mutex // guards pending
	pending string     // trigger of the pending request; "" when none

	evalMu sync.Mutex // held for a whole evaluation; guards st
	st     *fileState
}

// New checks cfg, fills its defaults and loads the persisted state.
func New(cfg Config) (*Loop, error) {
	switch {
	case cfg.Evaluator == nil:
		return nil, errors.New("drift: no evaluator")
	case cfg.Baseline == nil:
		return nil, errors.New("drift: no baseline")
	case cfg.Sink == nil:
		return nil, errors.New("drift: no sink")
	case cfg.StatePath == "":
		return nil, errors.New("drift: no state path")
	case cfg.Log == nil:
		return nil, errors.New("drift: no logger")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = cfg.Interval / 10
	}
	if cfg.SnapshotEvery <= 0 {
		cfg.SnapshotEvery = DefaultSnapshotEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}

	st, err := loadState(cfg.StatePath)
	if errors.Is(err, errDamaged) {
		cfg.Log.Warn("drift state unreadable; starting over with a full snapshot",
			logkey.Error, err)
		st, err = &fileState{Checks: map[string]checkState{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return &Loop{cfg: cfg, log: cfg.Log, wake: make(chan struct{}, 1), st: st}, nil
}

// Run evaluates at once, then on the schedule and on each request, until ctx ends; it
// returns nil then. A failed evaluation is logged and tried again at the next occasion.
func (l *Loop) Run(ctx context.Context) error {
	l.evaluateLogged(ctx, TriggerStart)

	timer := time.NewTimer(l.nextWait())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			l.evaluateLogged(ctx, TriggerSchedule)
			timer.Reset(l.nextWait())
		case <-l.wake:
			l.evaluateLogged(ctx, l.takePending())
		}
	}
}

// Request asks Run for an evaluation as soon as possible, with trigger (TriggerBaseline
// or TriggerRequest). It never blocks; requests made before Run gets to them are merged,
// and a baseline change wins over a plain request.
func (l *Loop) Request(trigger string) {
	l.mu.Lock()
	if l.pending != TriggerBaseline {
		l.pending = trigger
	}
	l.mu.Unlock()

	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *Loop) takePending() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.pending
	l.pending = ""
	if t == "" {
		t = TriggerRequest
	}
	return t
}

// nextWait is the interval plus or minus a random part of the jitter.
func (l *Loop) nextWait() time.Duration {
	j := l.cfg.Jitter
	if j <= 0 {
		return l.cfg.Interval
	}
	d := l.cfg.Interval + time.Duration(rand.Int64N(int64(2*j)+1)) - j
	return max(d, time.Second)
}

func (l *Loop) evaluateLogged(ctx context.Context, trigger string) {
	if err := l.Evaluate(ctx, trigger); err != nil && ctx.Err() == nil {
		l.log.Error("drift evaluation", "trigger", trigger, logkey.Error, err)
	}
}

// Evaluate runs the whole baseline once and enqueues a report of the checks whose state
// changed (every check when a full snapshot is due). Nothing is enqueued when nothing
// changed. The new states are saved only once the report is durable, so a report the
// sink could not take is made again at the next evaluation.
func (l *Loop) Evaluate(ctx context.Context, trigger string) error {
	_, err := l.evaluate(ctx, trigger, "", false)
	return err
}

// Summary is what one evaluation found and reported.
type Summary struct {
	Checks   int  // checks evaluated
	Reported int  // results in the report (zero: nothing changed, no report)
	Failing  int  // checks failing
	Full     bool // the report was a full snapshot
}

// EvaluateRequested evaluates the whole baseline now on an operator's request (command
// commandID), whatever the schedule, and enqueues a report with trigger "request" and
// command_id set: every check when full is set, otherwise those whose state changed
// (nothing when none did). It blocks until the report is enqueued.
func (l *Loop) EvaluateRequested(ctx context.Context, commandID string, full bool) (Summary,
	error) {
	return l.evaluate(ctx, TriggerRequest, commandID, full)
}

func (l *Loop) evaluate(ctx context.Context, trigger, commandID string,
	forceFull bool) (Summary, error) {
	l.evalMu.Lock()
	defer l.evalMu.Unlock()

	b := l.cfg.Baseline()
	now := l.cfg.Now()
	began := time.Now()
	results := l.cfg.Evaluator.Baseline(ctx, b)
	if ctx.Err() != nil {
		return Summary{}, ctx.Err()
	}

	full, why := l.st.snapshotDue(b, now, l.cfg.SnapshotEvery)
	if forceFull && !full {
		full, why = true, "requested"
	}
	next := l.st.clone()
	changed := next.apply(b, results, now, true)
	report := &wardv1.DriftReport{BaselineId: b.ID, BaselineVersion: b.Version,
		FullSnapshot: full, Trigger: trigger, CommandId: commandID}
	for _, r := range results {
		if full || changed[r.CheckID] {
			report.Results = append(report.Results, wire(r, next.Checks[r.CheckID].Since))
		}
	}
	if full {
		next.LastSnapshot = now
	}
	sum := Summary{Checks: len(results), Reported: len(report.Results),
		Failing: countFailing(results), Full: full}

	log := l.log.With("trigger", trigger, "baseline", b.ID, logkey.Version, b.Version)
	if commandID != "" {
		log = log.With(logkey.Command, commandID)
	}
	if len(report.Results) == 0 {
		log.Debug("drift evaluated; nothing changed", "checks", len(results),
			logkey.Duration, time.Since(began).String())
		return sum, l.save(next)
	}
	if err := l.send(report); err != nil {
		return Summary{}, err
	}
	log.Info("drift reported", "checks", len(results), "reported", len(report.Results),
		"full_snapshot", full, "snapshot_reason", why, "failing", sum.Failing,
		logkey.Duration, time.Since(began).String())
	return sum, l.save(next)
}

// Verify evaluates only ids, right after command commandID, and enqueues their results
// whatever their state, with command_id set: the controller's verification of the
// command. It blocks until the report is enqueued and returns the error that prevented
// it.
func (l *Loop) Verify(ctx context.Context, commandID string, ids []string) error {
	l.evalMu.Lock()
	defer l.evalMu.Unlock()

	b := l.cfg.Baseline()
	now := l.cfg.Now()
	results := l.cfg.Evaluator.Baseline(ctx, b, ids...)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	next := l.st.clone()
	next.apply(b, results, now, false)

	report := &wardv1.DriftReport{BaselineId: b.ID, BaselineVersion: b.Version,
		Trigger: TriggerVerify, CommandId: commandID}
	for _, r := range results {
		report.Results = append(report.Results, wire(r, next.Checks[r.CheckID].Since))
	}
	if len(report.Results) < len(ids) {
		l.log.Warn("verification names checks the baseline lacks", logkey.Command, commandID,
			"asked", len(ids), "found", len(report.Results))
	}
	if len(report.Results) == 0 {
		return nil
	}
	if err := l.send(report); err != nil {
		return err
	}
	l.log.Info("verification reported", logkey.Command, commandID,
		"checks", len(results), "failing", countFailing(results))
	return l.save(next)
}

func (l *Loop) send(r *wardv1.DriftReport) error {
	_, err := l.cfg.Sink.Enqueue(&wardv1.ConnectRequest{
		CreatedAt: timestamppb.New(l.cfg.Now()),
		Body:      &wardv1.ConnectRequest_DriftReport{DriftReport: r},
	})
	if err != nil {
		return fmt.Errorf("drift: enqueue report: %w", err)
	}
	return nil
}

// save persists next and makes it the current state. A failed write is logged, not
// returned: the report is already durable, and the states are kept in memory.
func (l *Loop) save(next *fileState) error {
	l.st = next
	if err := next.save(l.cfg.StatePath); err != nil {
		l.log.Warn("save drift state; since times may restart after a restart",
			logkey.Path, l.cfg.StatePath, logkey.Error, err)
	}
	return nil
}

// wire converts a result to its wire form, scrubbed and bounded.
func wire(r checks.Result, since time.Time) *wardv1.CheckResult {
	return &wardv1.CheckResult{
		CheckId:  r.CheckID,
		State:    stateOf(r.State),
		Observed: bound(scrub.Text(r.Observed)),
		Message:  bound(scrub.Text(r.Message)),
		Since:    timestamppb.New(since),
	}
}

func stateOf(s checks.State) wardv1.CheckState {
	switch s {
	case checks.Pass:
		return wardv1.CheckState_CHECK_STATE_PASS
	case checks.Fail:
		return wardv1.CheckState_CHECK_STATE_FAIL
	case checks.Error:
		return wardv1.CheckState_CHECK_STATE_ERROR
	case checks.NotApplicable:
		return wardv1.CheckState_CHECK_STATE_NOT_APPLICABLE
	}
	return wardv1.CheckState_CHECK_STATE_UNSPECIFIED
}

// bound cuts s to MaxObserved bytes, on a rune boundary.
func bound(s string) string {
	const mark = " [truncated]"
	if len(s) <= MaxObserved {
		return s
	}
	cut := MaxObserved - len(mark)
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

func countFailing(results []checks.Result) int {
	n := 0
	for _, r := range results {
		if r.State == checks.Fail {
			n++
		}
	}
	return n
}
