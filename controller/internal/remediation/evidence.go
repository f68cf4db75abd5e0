package remediation

import (
	"context"

	"github.com/wardsec/ward/controller/internal/evidence"
)

// EvidenceRecorder writes decisions to the evidence log through r.
type EvidenceRecorder struct{ Log evidence.Recorder }

// evidenceTypes maps decision actions to evidence record types and says what the
// record's subject is.
var evidenceTypes = map[string]struct{ typ, subject string }{
	"incident_opened":    {evidence.TypeIncidentOpened, "incident"},
	"awaiting_approval":  {evidence.TypeIncidentOpened, "incident"},
	"auto_remediated":    {evidence.TypeIncidentApproved, "incident"},
	"approved":           {evidence.TypeIncidentApproved, "incident"},
	"escalated":          {evidence.TypeIncidentEscalated, "incident"},
	"resolved":           {evidence.TypeIncidentResolved, "incident"},
	"verified":           {evidence.TypeCommandResult, "command"},
	"command_issued":     {evidence.TypeCommandIssued, "command"},
	"command_result":     {evidence.TypeCommandResult, "command"},
	"baseline_published": {evidence.TypeBaselinePublished, "detail"},
	"baseline_applied":   {evidence.TypeBaselineApplied, "agent"},
	"check_excluded":     {evidence.TypeCheckChanged, "check"},
}

// Record implements Recorder.
func (r EvidenceRecorder) Record(ctx context.Context, d Decision) error {
	t, ok := evidenceTypes[d.Action]
	if !ok {
		t.typ, t.subject = "remediation."+d.Action, "incident"
	}
	subject := map[string]string{"incident": d.Incident, "command": d.Command,
		"agent": d.Agent, "check": d.Check, "detail": d.Detail}[t.subject]

	actor := evidence.Actor{Kind: evidence.ActorOperator, ID: d.Actor}
	switch d.Actor {
	case ControllerActor, "":
		actor = evidence.Actor{Kind: evidence.ActorController, ID: ControllerActor}
	case d.Agent:
		actor = evidence.Actor{Kind: evidence.ActorAgent, ID: d.Agent}
	}
	_, err := r.Log.Record(ctx, evidence.Entry{Tenant: d.Tenant, Type: t.typ, Actor: actor,
		Subject: subject, Data: map[string]string{"action": d.Action, "agent": d.Agent,
			"incident": d.Incident, "check": d.Check, "command": d.Command,
			"runbook": d.Runbook, "detail": d.Detail, "at": d.At.UTC().Format(
				"2006-01-02T15:04:05.000Z")}})
	return err
}
