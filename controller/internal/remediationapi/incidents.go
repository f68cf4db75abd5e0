package remediationapi

import (
	"context"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/remediation"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func incidentProto(i store.Incident, history bool) *wardv1.Incident {
	p := &wardv1.Incident{Id: i.ID, Tenant: i.Tenant, Agent: i.Agent, Check: i.Check,
		State: string(i.State), Kind: i.Kind, Severity: i.Severity, Runbook: i.Runbook,
		Observed: i.Observed, Reason: i.Reason, ApprovedBy: i.ApprovedBy,
		Commands: i.Commands, OpenedAt: ts(i.OpenedAt), UpdatedAt: ts(i.UpdatedAt),
		ResolvedAt: ts(i.ResolvedAt)}
	if history {
		for _, e := range i.History {
			p.History = append(p.History, &wardv1.IncidentEvent{At: ts(e.At),
				State: string(e.State), Actor: e.Actor, Action: e.Action, Detail: e.Detail,
				Command: e.Command})
		}
	}
	return p
}

var validStates = map[string]bool{
	"": true, string(store.IncidentOpen): true, string(store.IncidentRemediating): true,
	string(store.IncidentAwaitingApproval): true, string(store.IncidentEscalated): true,
	string(store.IncidentResolved): true,
}

// ListIncidents lists the incidents the caller can see.
func (s *Server) ListIncidents(ctx context.Context, req *wardv1.ListIncidentsRequest) (
	*wardv1.ListIncidentsResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	if !validStates[req.GetState()] {
		return nil, status.Errorf(codes.InvalidArgument, "state: unknown %q", req.GetState())
	}
	tenants, err := s.tenants(ctx, sc, req.GetTenant())
	if err != nil {
		return nil, err
	}
	f := store.IncidentFilter{Agent: req.GetAgent(), State: store.IncidentState(req.GetState()),
		Unresolved: req.GetUnresolved()}
	resp := &wardv1.ListIncidentsResponse{}
	for _, t := range tenants {
		incs, err := s.st.ListIncidents(ctx, t, f)
		if err != nil {
			return nil, s.internal(ctx, "list incidents", err)
		}
		for _, i := range incs {
			resp.Incidents = append(resp.Incidents, incidentProto(i, false))
		}
	}
	return resp, nil
}

// visibleIncident loads an incident the caller can see; NotFound otherwise.
func (s *Server) visibleIncident(ctx context.Context, sc scope, id string) (store.Incident,
	error) {
	if id == "" {
		return store.Incident{}, status.Error(codes.InvalidArgument, "id: required")
	}
	inc, err := s.st.GetIncident(ctx, id)
	if err != nil {
		return store.Incident{}, s.storeErr(ctx, "incident", id, err)
	}
	if !sc.canSee(inc.Tenant) {
		return store.Incident{}, status.Errorf(codes.NotFound, "incident %q not found", id)
	}
	return inc, nil
}

// actIncident loads an incident the caller may act on.
func (s *Server) actIncident(ctx context.Context, id string) (scope, store.Incident, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return sc, store.Incident{}, err
	}
	inc, err := s.visibleIncident(ctx, sc, id)
	if err != nil {
		return sc, inc, err
	}
	if !sc.canWrite(inc.Tenant) {
		return sc, inc, status.Errorf(codes.PermissionDenied,
			"permission denied: %s may not act in tenant %s", sc.op.Role, inc.Tenant)
	}
	return sc, inc, nil
}

// GetIncident shows one incident with its history.
func (s *Server) GetIncident(ctx context.Context, req *wardv1.GetIncidentRequest) (
	*wardv1.GetIncidentResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	inc, err := s.visibleIncident(ctx, sc, req.GetId())
	if err != nil {
		return nil, err
	}
	return &wardv1.GetIncidentResponse{Incident: incidentProto(inc, true)}, nil
}

// ApproveIncident approves an incident's runbook.
func (s *Server) ApproveIncident(ctx context.Context, req *wardv1.ApproveIncidentRequest) (
	*wardv1.ApproveIncidentResponse, error) {
	sc, _, err := s.actIncident(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	inc, err := s.cfg.Engine.Approve(ctx, req.GetId(), sc.name())
	if err != nil {
		return nil, s.engineErr(ctx, "approve", err)
	}
	return &wardv1.ApproveIncidentResponse{Incident: incidentProto(inc, true)}, nil
}

// EscalateIncident escalates an incident.
func (s *Server) EscalateIncident(ctx context.Context, req *wardv1.EscalateIncidentRequest) (
	*wardv1.EscalateIncidentResponse, error) {
	sc, _, err := s.actIncident(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	inc, err := s.cfg.Engine.Escalate(ctx, req.GetId(), sc.name(), req.GetReason())
	if err != nil {
		return nil, s.engineErr(ctx, "escalate", err)
	}
	return &wardv1.EscalateIncidentResponse{Incident: incidentProto(inc, true)}, nil
}

// ResolveIncident resolves an incident by hand.
func (s *Server) ResolveIncident(ctx context.Context, req *wardv1.ResolveIncidentRequest) (
	*wardv1.ResolveIncidentResponse, error) {
	sc, _, err := s.actIncident(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	inc, err := s.cfg.Engine.Resolve(ctx, req.GetId(), sc.name(), req.GetReason())
	if err != nil {
		return nil, s.engineErr(ctx, "resolve", err)
	}
	return &wardv1.ResolveIncidentResponse{Incident: incidentProto(inc, true)}, nil
}

// ListChecks lists check states.
func (s *Server) ListChecks(ctx context.Context, req *wardv1.ListChecksRequest) (
	*wardv1.ListChecksResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	tenant := req.GetTenant()
	if req.GetAgent() != "" {
		a, err := s.visibleAgent(ctx, sc, req.GetAgent())
		if err != nil {
			return nil, err
		}
		tenant = a.Tenant
	}
	tenants, err := s.tenants(ctx, sc, tenant)
	if err != nil {
		return nil, err
	}
	resp := &wardv1.ListChecksResponse{}
	for _, t := range tenants {
		all, err := s.st.ListCheckStatuses(ctx, t, req.GetAgent())
		if err != nil {
			return nil, s.internal(ctx, "list checks", err)
		}
		for _, c := range all {
			if req.GetFailing() && c.State != "fail" {
				continue
			}
			resp.Checks = append(resp.Checks, &wardv1.CheckStatus{Tenant: c.Tenant,
				Agent: c.Agent, Check: c.Check, State: c.State, Observed: c.Observed,
				Message: c.Message, Since: ts(c.Since), UpdatedAt: ts(c.UpdatedAt)})
		}
	}
	return resp, nil
}

// visibleAgent loads an agent the caller can see; NotFound otherwise.
func (s *Server) visibleAgent(ctx context.Context, sc scope, id string) (store.Agent, error) {
	a, err := s.st.GetAgent(ctx, id)
	if err != nil {
		return store.Agent{}, s.storeErr(ctx, "agent", id, err)
	}
	if !sc.canSee(a.Tenant) {
		return store.Agent{}, status.Errorf(codes.NotFound, "agent %q not found", id)
	}
	return a, nil
}

// RunRunbook issues a runbook on an agent.
func (s *Server) RunRunbook(ctx context.Context, req *wardv1.RunRunbookRequest) (
	*wardv1.RunRunbookResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.visibleAgent(ctx, sc, req.GetAgent())
	if err != nil {
		return nil, err
	}
	if err := s.act(ctx, sc, a.Tenant); err != nil {
		return nil, err
	}
	if a.Revoked {
		return nil, status.Error(codes.FailedPrecondition, "agent revoked")
	}
	c, err := s.cfg.Engine.RunRunbook(ctx, remediation.RunParams{Agent: a.ID,
		Runbook: req.GetRunbook(), Actor: sc.name(), DryRun: req.GetDryRun()})
	if err != nil {
		return nil, s.engineErr(ctx, "run runbook", err)
	}
	return &wardv1.RunRunbookResponse{CommandId: c.ID, Incident: c.Incident,
		Status: string(c.Status)}, nil
}

// SetAgentTier changes an agent's tier.
func (s *Server) SetAgentTier(ctx context.Context, req *wardv1.SetAgentTierRequest) (
	*wardv1.SetAgentTierResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetTier() < 1 || req.GetTier() > 3 {
		return nil, status.Error(codes.InvalidArgument, "tier: must be 1, 2 or 3")
	}
	a, err := s.visibleAgent(ctx, sc, req.GetAgent())
	if err != nil {
		return nil, err
	}
	if err := s.act(ctx, sc, a.Tenant); err != nil {
		return nil, err
	}
	_, err = s.st.UpdateAgent(ctx, a.ID, func(a *store.Agent) error {
		a.Tier = req.GetTier()
		return nil
	})
	if err != nil {
		return nil, s.storeErr(ctx, "agent", a.ID, err)
	}
	s.log.Info("agent tier set", "agent", a.ID, "tier", req.GetTier(), "operator", sc.name())
	return &wardv1.SetAgentTierResponse{}, nil
}

// RunChecks asks one agent, or every agent of a tenant that is not revoked, to evaluate
// its baseline now.
func (s *Server) RunChecks(ctx context.Context, req *wardv1.RunChecksRequest) (
	*wardv1.RunChecksResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	var agents []store.Agent
	switch {
	case (req.GetAgent() == "") == (req.GetTenant() == ""):
		return nil, status.Error(codes.InvalidArgument,
			"name either an agent or a tenant (every agent of it)")
	case req.GetAgent() != "":
		a, err := s.visibleAgent(ctx, sc, req.GetAgent())
		if err != nil {
			return nil, err
		}
		if err := s.act(ctx, sc, a.Tenant); err != nil {
			return nil, err
		}
		if a.Revoked {
			return nil, status.Errorf(codes.FailedPrecondition, "agent %s revoked", a.ID)
		}
		agents = []store.Agent{a}
	default:
		if err := s.act(ctx, sc, req.GetTenant()); err != nil {
			return nil, err
		}
		all, err := s.st.ListAgents(ctx, req.GetTenant())
		if err != nil {
			return nil, s.internal(ctx, "list agents", err)
		}
		for _, a := range all {
			if !a.Revoked {
				agents = append(agents, a)
			}
		}
	}
	slices.SortFunc(agents, func(a, b store.Agent) int { return strings.Compare(a.ID, b.ID) })

	resp := &wardv1.RunChecksResponse{}
	for _, a := range agents {
		c, err := s.cfg.Engine.RequestEvaluation(ctx, remediation.EvaluateParams{
			Agent: a.ID, Actor: sc.name(), Full: req.GetFullSnapshot()})
		if err != nil {
			return nil, s.engineErr(ctx, "run checks", err)
		}
		resp.Runs = append(resp.Runs, &wardv1.CheckRun{Agent: a.ID, CommandId: c.ID,
			Status: string(c.Status)})
	}
	s.log.Info("checks run requested", "operator", sc.name(), logkey.Count, len(resp.Runs),
		"full", req.GetFullSnapshot())
	return resp, nil
}
