package remediationapi

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/controller/internal/remediation"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/runbook"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// tenantBaseline describes tenant's current baseline.
func (s *Server) tenantBaseline(ctx context.Context, tenant string) (*wardv1.TenantBaseline,
	[]byte, error) {
	b, doc, err := s.cfg.Baselines.Current(ctx, tenant)
	if err != nil {
		return nil, nil, s.internal(ctx, "current baseline", err)
	}
	p := &wardv1.TenantBaseline{Tenant: tenant, BaselineId: b.ID, Version: b.Version,
		AgentVersions: map[string]string{}, Exclusions: map[string]string{}}
	v, err := s.st.CurrentBaseline(ctx, tenant)
	if err == nil {
		p.PublishedAt, p.PublishedBy = ts(v.PublishedAt), v.PublishedBy
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, nil, s.internal(ctx, "current baseline", err)
	}
	if p.AgentVersions, err = s.st.AgentBaselines(ctx, tenant); err != nil {
		return nil, nil, s.internal(ctx, "agent baselines", err)
	}
	ex, err := s.st.ListExclusions(ctx, tenant)
	if err != nil {
		return nil, nil, s.internal(ctx, "exclusions", err)
	}
	for _, e := range ex {
		p.Exclusions[e.Check] = e.Reason
	}
	for _, e := range b.Exceptions {
		p.Exclusions[e.Check] = e.Reason
	}
	return p, doc, nil
}

// ListBaselines lists each visible tenant's baseline.
func (s *Server) ListBaselines(ctx context.Context, req *wardv1.ListBaselinesRequest) (
	*wardv1.ListBaselinesResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	tenants, err := s.tenants(ctx, sc, req.GetTenant())
	if err != nil {
		return nil, err
	}
	resp := &wardv1.ListBaselinesResponse{}
	for _, t := range tenants {
		p, _, err := s.tenantBaseline(ctx, t)
		if err != nil {
			return nil, err
		}
		resp.Baselines = append(resp.Baselines, p)
	}
	return resp, nil
}

// ShowBaseline returns a tenant's baseline document.
func (s *Server) ShowBaseline(ctx context.Context, req *wardv1.ShowBaselineRequest) (
	*wardv1.ShowBaselineResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.see(ctx, sc, req.GetTenant()); err != nil {
		return nil, err
	}
	p, doc, err := s.tenantBaseline(ctx, req.GetTenant())
	if err != nil {
		return nil, err
	}
	return &wardv1.ShowBaselineResponse{Baseline: p, Document: doc}, nil
}

// PushBaseline validates and publishes a baseline document.
func (s *Server) PushBaseline(ctx context.Context, req *wardv1.PushBaselineRequest) (
	*wardv1.PushBaselineResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.act(ctx, sc, req.GetTenant()); err != nil {
		return nil, err
	}
	name := req.GetFileName()
	if name == "" {
		name = "baseline.yaml"
	}
	if _, err := s.cfg.Baselines.Push(ctx, req.GetTenant(), name, req.GetDocument(),
		sc.name()); err != nil {
		if errors.Is(err, remediation.ErrEvidence) {
			return nil, evidenceErr()
		}
		// Validation problems name the operator's own file and lines: safe to return.
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	p, _, err := s.tenantBaseline(ctx, req.GetTenant())
	if err != nil {
		return nil, err
	}
	return &wardv1.PushBaselineResponse{Baseline: p}, nil
}

// ExcludeCheck records a tenant's exclusion of a check.
func (s *Server) ExcludeCheck(ctx context.Context, req *wardv1.ExcludeCheckRequest) (
	*wardv1.ExcludeCheckResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.act(ctx, sc, req.GetTenant()); err != nil {
		return nil, err
	}
	if req.GetCheck() == "" || req.GetReason() == "" {
		return nil, status.Error(codes.InvalidArgument, "check and reason: required")
	}
	err = s.cfg.Baselines.Exclude(ctx, req.GetTenant(), req.GetCheck(), req.GetReason(),
		sc.name())
	if errors.Is(err, remediation.ErrEvidence) {
		return nil, evidenceErr()
	}
	if err != nil {
		return nil, s.internal(ctx, "exclude", err)
	}
	return &wardv1.ExcludeCheckResponse{}, nil
}

func runbookProto(rb *runbook.Runbook) *wardv1.Runbook {
	p := &wardv1.Runbook{Id: rb.ID, Title: rb.Title, Checks: rb.Answers,
		AutoRemediate: rb.AutoRemediate, Verify: rb.VerifyChecks(), Params: rb.Params}
	for _, st := range rb.Steps {
		p.Steps = append(p.Steps, &wardv1.RunbookStep{Action: st.Action, Params: st.Params})
	}
	return p
}

// ListRunbooks lists runbooks.
func (s *Server) ListRunbooks(ctx context.Context, _ *wardv1.ListRunbooksRequest) (
	*wardv1.ListRunbooksResponse, error) {
	if _, err := callerScope(ctx); err != nil {
		return nil, err
	}
	resp := &wardv1.ListRunbooksResponse{}
	for _, id := range s.runbooks.IDs() {
		resp.Runbooks = append(resp.Runbooks, runbookProto(s.runbooks[id]))
	}
	return resp, nil
}

// GetRunbook shows one runbook.
func (s *Server) GetRunbook(ctx context.Context, req *wardv1.GetRunbookRequest) (
	*wardv1.GetRunbookResponse, error) {
	if _, err := callerScope(ctx); err != nil {
		return nil, err
	}
	rb := s.runbooks[req.GetId()]
	if rb == nil {
		return nil, status.Errorf(codes.NotFound, "runbook %q not found", req.GetId())
	}
	return &wardv1.GetRunbookResponse{Runbook: runbookProto(rb)}, nil
}
