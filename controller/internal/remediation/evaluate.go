package remediation

import (
	"context"
	"fmt"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/runbook"
)

// EvaluationRunbook is the runbook id an evaluate_baseline command carries, as the agent
// logs it and operators see it in the command's record.
const EvaluationRunbook = "ward-evaluate-baseline"

// evaluationTimeout bounds the agent's evaluation step.
const evaluationTimeout = 5 * time.Minute

// EvaluateParams describes an operator's request that an agent evaluate its baseline now.
type EvaluateParams struct {
	Agent string // required
	Actor string // operator name; required
	// Full asks for every check in the report, not only those whose state changed.
	Full bool
}

// RequestEvaluation issues a signed evaluate_baseline command to the agent: the same
// path as a runbook's command (policy key, the agent and tenant named, expiry, a unique
// id the agent runs at most once; stored before it is sent, resent when the agent
// connects until it expires). The agent evaluates at once and its drift report carries
// the command's id; the report then goes through HandleDrift like any other. Role and
// tenant checks are the caller's. The returned command is as stored after sending.
func (e *Engine) RequestEvaluation(ctx context.Context, p EvaluateParams) (store.Command,
	error) {
	agent, err := e.st.GetAgent(ctx, p.Agent)
	if err != nil {
		return store.Command{}, fmt.Errorf("remediation: evaluate: %w", err)
	}
	if agent.Revoked {
		return store.Command{}, fmt.Errorf("remediation: evaluate: agent %s revoked: %w",
			agent.ID, ErrState)
	}
	step := Step{Action: runbook.ActionEvaluateBaseline, Timeout: evaluationTimeout}
	if p.Full {
		step.Params = map[string]string{"full": "true"}
	}

	c, _, err := e.issue(ctx, issueParams{agent: agent.ID, tenant: agent.Tenant,
		rb: Runbook{ID: EvaluationRunbook, Title: "Evaluate the baseline now",
			Steps: []Step{step}}, actor: p.Actor}, nil)
	if err != nil {
		return store.Command{}, fmt.Errorf("remediation: evaluate: %w", err)
	}
	e.log.Info("evaluation requested", logkey.Agent, agent.ID, logkey.Command, c.ID,
		"actor", p.Actor, "full", p.Full)
	e.sendNew(ctx, c)
	return e.st.GetCommand(ctx, c.ID)
}
