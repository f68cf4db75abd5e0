package baselines

import (
	"context"
	"errors"

	"github.com/wardsec/ward/controller/internal/remediation"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/runbook"
)

// RunbookFor returns the runbook that the tenant's current baseline names for check.
// Runbooks with parameters (an account name, ...) need a person to supply them and are
// not offered for automatic runs: ok is false for them.
func (m *Manager) RunbookFor(ctx context.Context, tenant, check string) (
	remediation.Runbook, bool, error) {
	b, _, err := m.Current(ctx, tenant)
	if err != nil {
		return remediation.Runbook{}, false, err
	}
	c := b.Check(check)
	if c == nil || !c.HasRunbook() {
		return remediation.Runbook{}, false, nil
	}
	rb, ok := m.Runbook(c.Runbook)
	return rb, ok, nil
}

// Runbook returns the runbook with id, without parameters bound; ok is false for an
// unknown one or one that needs parameters.
func (m *Manager) Runbook(id string) (remediation.Runbook, bool) {
	rb := m.runbooks[id]
	if rb == nil || len(rb.Params) > 0 {
		return remediation.Runbook{}, false
	}
	return convert(rb), true
}

// Severity returns the check's severity in the tenant's current baseline.
func (m *Manager) Severity(ctx context.Context, tenant, check string) string {
	b, _, err := m.Current(ctx, tenant)
	if err != nil {
		return ""
	}
	if c := b.Check(check); c != nil {
		return string(c.Severity)
	}
	return ""
}

// Excluded reports whether tenant does not apply check: an exclusion stored for the
// tenant, or an exception in force in its baseline document.
func (m *Manager) Excluded(ctx context.Context, tenant, check string) bool {
	ts, err := m.state(ctx, tenant)
	if err != nil {
		return false
	}
	return ts.excluded[check] || ts.b.Excepted(check, m.clock()) != nil
}

// Exclude records that tenant does not apply check, for reason, by actor.
func (m *Manager) Exclude(ctx context.Context, tenant, check, reason, actor string) error {
	if reason == "" {
		return errors.New("baselines: an exclusion needs a reason")
	}
	err := m.record(ctx, remediation.Decision{Tenant: tenant, Check: check,
		Action: "check_excluded", Actor: actor, Detail: reason})
	if err != nil {
		return err
	}
	err = m.cfg.Store.PutExclusion(ctx, store.Exclusion{Tenant: tenant, Check: check,
		Reason: reason, CreatedAt: m.clock(), CreatedBy: actor})
	m.forget(tenant)
	return err
}

func convert(rb *runbook.Runbook) remediation.Runbook {
	out := remediation.Runbook{ID: rb.ID, Title: rb.Title, Checks: rb.Answers,
		RequiresApproval: !rb.AutoRemediate, Verify: rb.VerifyChecks()}
	for _, s := range rb.Steps {
		out.Steps = append(out.Steps, remediation.Step{Action: s.Action, Params: s.Params,
			Timeout: s.Timeout})
	}
	return out
}
