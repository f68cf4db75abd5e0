package actions

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// EvaluationSummary is what an evaluate_baseline run found and reported.
type EvaluationSummary struct {
	Checks   int  // checks evaluated
	Reported int  // results reported (zero: nothing changed since the last report)
	Failing  int  // checks failing
	Full     bool // every check was reported
}

// commandIDKey carries the running command's id to actions that report under it.
type commandIDKey struct{}

// WithCommandID returns ctx carrying the id of the command whose steps run under it.
func WithCommandID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, commandIDKey{}, id)
}

func commandID(ctx context.Context) string {
	id, _ := ctx.Value(commandIDKey{}).(string)
	return id
}

// evaluateBaseline evaluates the baseline now and reports it, as the drift loop does on
// its schedule, but at once and with the command's id on the report. It changes nothing
// on the host; a dry run only says what it would do.
func (r *Runner) evaluateBaseline(ctx context.Context, p map[string]string,
	dry bool) (Outcome, error) {
	if r.cfg.EvaluateBaseline == nil {
		return Outcome{}, errors.New("evaluate_baseline: not available on this agent")
	}
	full := false
	if v := p["full"]; v != "" {
		var err error
		if full, err = strconv.ParseBool(v); err != nil {
			return Outcome{}, fmt.Errorf("evaluate_baseline: full: %q is not true or false", v)
		}
	}
	if dry {
		return Outcome{Output: fmt.Sprintf("would evaluate the baseline (full %t)", full)}, nil
	}

	sum, err := r.cfg.EvaluateBaseline(ctx, commandID(ctx), full)
	if err != nil {
		return Outcome{}, fmt.Errorf("evaluate_baseline: %w", err)
	}
	what := "nothing changed, no report"
	switch {
	case sum.Full:
		what = fmt.Sprintf("reported all %d checks", sum.Reported)
	case sum.Reported > 0:
		what = fmt.Sprintf("reported %d changed checks", sum.Reported)
	}
	return Outcome{Output: fmt.Sprintf("evaluated %d checks, %d failing; %s", sum.Checks,
		sum.Failing, what)}, nil
}
