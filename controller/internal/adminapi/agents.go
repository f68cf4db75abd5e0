package adminapi

import (
	"context"
	"errors"
	"slices"

	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// ListAgents lists the agents the caller can see, ordered by tenant then id.
func (s *Server) ListAgents(ctx context.Context, req *wardv1.ListAgentsRequest) (
	*wardv1.ListAgentsResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetTenant() != "" {
		if err := s.checkTenantArg(ctx, sc, "tenant", req.GetTenant()); err != nil {
			return nil, err
		}
	}
	all, err := s.store.ListAgents(ctx, req.GetTenant())
	if err != nil {
		return nil, s.internal(ctx, "list agents", err)
	}
	resp := &wardv1.ListAgentsResponse{}
	for _, a := range all {
		if sc.canSee(a.Tenant) {
			resp.Agents = append(resp.Agents, agentProto(a))
		}
	}
	return resp, nil
}

// GetAgent shows one agent the caller can see.
func (s *Server) GetAgent(ctx context.Context, req *wardv1.GetAgentRequest) (
	*wardv1.GetAgentResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.findAgent(ctx, sc, req.GetId())
	if err != nil {
		return nil, err
	}
	return &wardv1.GetAgentResponse{Agent: agentProto(a)}, nil
}

// RevokeAgent marks the agent revoked, then closes its open stream. Admin; technician
// within its tenants. Revoking a revoked agent keeps the first revocation's time and
// reason.
func (s *Server) RevokeAgent(ctx context.Context, req *wardv1.RevokeAgentRequest) (
	*wardv1.RevokeAgentResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.findAgent(ctx, sc, req.GetId())
	if err != nil {
		return nil, err
	}
	if err := sc.requireWrite(a.Tenant); err != nil {
		return nil, err
	}
	if err := checkText("reason", req.GetReason()); err != nil {
		return nil, err
	}

	now := s.clock().UTC()
	a, err = s.store.UpdateAgent(ctx, a.ID, func(a *store.Agent) error {
		if !a.Revoked {
			a.Revoked, a.RevokedAt, a.RevokeReason = true, now, req.GetReason()
		}
		a.Online = false
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("agent", req.GetId())
	}
	if err != nil {
		return nil, s.internal(ctx, "revoke agent", err)
	}
	s.streams.CloseAgent(a.ID)
	if err := s.record(ctx, sc, a.Tenant, evidence.TypeAgentRevoked, a.ID,
		map[string]any{"reason": a.RevokeReason, "hostname": a.Host.Hostname}); err != nil {
		return nil, err
	}
	s.log.Info("agent revoked", logkey.Agent, a.ID, logkey.Tenant, a.Tenant,
		logkey.Operator, sc.name(), logkey.Reason, a.RevokeReason)
	return &wardv1.RevokeAgentResponse{Agent: agentProto(a)}, nil
}

// findAgent returns the agent with id if the caller can see it, else NotFound.
func (s *Server) findAgent(ctx context.Context, sc scope, id string) (store.Agent, error) {
	if !identity.ValidName(id) {
		return store.Agent{}, invalid("id", "not a valid agent id")
	}
	a, err := s.store.GetAgent(ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !sc.canSee(a.Tenant) {
		return store.Agent{}, notFound("agent", id)
	}
	if err != nil {
		return store.Agent{}, s.internal(ctx, "get agent", err)
	}
	return a, nil
}

// SetAgentRoles replaces the roles the agent may take, records the change and, when the
// roles changed, ends the agent's open stream so that its next Hello is checked against
// them. Admin; technician within its tenants.
//
// Known limitation: only this controller's stream of the agent is ended. A stream open on
// another replica keeps its roles until the agent reconnects (the revocation scan reads
// only the revocation index).
func (s *Server) SetAgentRoles(ctx context.Context, req *wardv1.SetAgentRolesRequest) (
	*wardv1.SetAgentRolesResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.findAgent(ctx, sc, req.GetId())
	if err != nil {
		return nil, err
	}
	if err := sc.requireWrite(a.Tenant); err != nil {
		return nil, err
	}
	roles, err := store.NormalizeAgentRoles(req.GetRoles())
	if err != nil {
		return nil, invalid("roles", err.Error())
	}

	var from []string
	a, err = s.store.UpdateAgent(ctx, a.ID, func(a *store.Agent) error {
		from = a.AllowedRoles()
		a.Roles = roles
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("agent", req.GetId())
	}
	if err != nil {
		return nil, s.internal(ctx, "set agent roles", err)
	}
	if err := s.record(ctx, sc, a.Tenant, evidence.TypeAgentRolesSet, a.ID,
		map[string]any{"from": from, "to": roles, "hostname": a.Host.Hostname}); err != nil {
		return nil, err
	}
	if !slices.Equal(from, roles) {
		s.streams.ResetAgent(a.ID)
	}
	s.log.Info("agent roles set", logkey.Agent, a.ID, logkey.Tenant, a.Tenant,
		logkey.Operator, sc.name(), logkey.Roles, roles, "from", from)
	return &wardv1.SetAgentRolesResponse{Agent: agentProto(a)}, nil
}
