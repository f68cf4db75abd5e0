// Package remediationapi serves ward.v1.RemediationService, the operator API of the
// remediation loop that wardctl's baseline, check, incident and runbook nouns speak. The
// authz interceptors have already checked that the caller is a live operator; this
// package enforces roles and tenant scope as package adminapi does:
//
//   - admin: everything, in every tenant;
//   - technician: reads and acts (push, exclude, approve, escalate, resolve, run, tier)
//     within its tenants;
//   - auditor: reads only, within its tenants, or everywhere when it has none.
//
// An object in a tenant the caller cannot see answers NotFound, as an unknown one does.
package remediationapi

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/controller/internal/authz"
	"github.com/wardsec/ward/controller/internal/baselines"
	"github.com/wardsec/ward/controller/internal/remediation"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/runbook"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Store is the state the API reads.
type Store interface {
	store.Tenants
	store.Agents
	store.Remediation
}

// Config configures a Server. Every field but Runbooks is required.
type Config struct {
	Store     Store
	Engine    *remediation.Engine
	Baselines *baselines.Manager
	// Runbooks are the runbooks listed; nil means the shipped ones.
	Runbooks runbook.Set
	Log      *slog.Logger
}

// Server implements wardv1.RemediationServiceServer. It is safe for concurrent use.
type Server struct {
	wardv1.UnimplementedRemediationServiceServer

	cfg      Config
	st       Store
	log      *slog.Logger
	runbooks runbook.Set
}

var _ wardv1.RemediationServiceServer = (*Server)(nil)

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("remediationapi: no store")
	case cfg.Engine == nil:
		return nil, errors.New("remediationapi: no engine")
	case cfg.Baselines == nil:
		return nil, errors.New("remediationapi: no baselines")
	case cfg.Log == nil:
		return nil, errors.New("remediationapi: no logger")
	}
	rbs := cfg.Runbooks
	if rbs == nil {
		var err error
		if rbs, err = runbook.Shipped(); err != nil {
			return nil, err
		}
	}
	return &Server{cfg: cfg, st: cfg.Store, log: cfg.Log, runbooks: rbs}, nil
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g *grpc.Server) { wardv1.RegisterRemediationServiceServer(g, s) }

// scope is what the calling operator may see and change.
type scope struct{ op *store.Operator }

func callerScope(ctx context.Context) (scope, error) {
	c, ok := authz.CallerFrom(ctx)
	if !ok || c.Operator == nil {
		return scope{}, status.Error(codes.PermissionDenied, "permission denied")
	}
	return scope{op: c.Operator}, nil
}

func (sc scope) name() string { return sc.op.Name }

func (sc scope) canSee(tenant string) bool {
	switch sc.op.Role {
	case store.RoleAdmin:
		return true
	case store.RoleTechnician:
		return slices.Contains(sc.op.Tenants, tenant)
	case store.RoleAuditor:
		return len(sc.op.Tenants) == 0 || slices.Contains(sc.op.Tenants, tenant)
	}
	return false
}

func (sc scope) canWrite(tenant string) bool {
	switch sc.op.Role {
	case store.RoleAdmin:
		return true
	case store.RoleTechnician:
		return slices.Contains(sc.op.Tenants, tenant)
	}
	return false
}

// see answers NotFound for a tenant the caller cannot see or that does not exist.
func (s *Server) see(ctx context.Context, sc scope, tenant string) error {
	if tenant == "" {
		return status.Error(codes.InvalidArgument, "tenant: required")
	}
	if !sc.canSee(tenant) {
		return status.Errorf(codes.NotFound, "tenant %q not found", tenant)
	}
	if _, err := s.st.GetTenant(ctx, tenant); err != nil {
		return s.storeErr(ctx, "tenant", tenant, err)
	}
	return nil
}

// act answers PermissionDenied unless the caller may act within tenant (which it can
// see: NotFound first).
func (s *Server) act(ctx context.Context, sc scope, tenant string) error {
	if err := s.see(ctx, sc, tenant); err != nil {
		return err
	}
	if !sc.canWrite(tenant) {
		return status.Errorf(codes.PermissionDenied,
			"permission denied: %s may not act in tenant %s", sc.op.Role, tenant)
	}
	return nil
}

// tenants returns the tenants a listing covers: tenant when set (checked), else every
// tenant the caller can see.
func (s *Server) tenants(ctx context.Context, sc scope, tenant string) ([]string, error) {
	if tenant != "" {
		if err := s.see(ctx, sc, tenant); err != nil {
			return nil, err
		}
		return []string{tenant}, nil
	}
	all, err := s.st.ListTenants(ctx)
	if err != nil {
		return nil, s.internal(ctx, "list tenants", err)
	}
	var out []string
	for _, t := range all {
		if sc.canSee(t.ID) {
			out = append(out, t.ID)
		}
	}
	return out, nil
}

// storeErr turns a store error about what/id into a status.
func (s *Server) storeErr(ctx context.Context, what, id string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return status.Errorf(codes.NotFound, "%s %q not found", what, id)
	}
	return s.internal(ctx, what, err)
}

// engineErr turns an engine error into a status.
func (s *Server) engineErr(ctx context.Context, op string, err error) error {
	switch {
	case errors.Is(err, remediation.ErrState):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, remediation.ErrNoRunbook):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, remediation.ErrEvidence):
		return evidenceErr()
	case errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, "not found")
	}
	return s.internal(ctx, op, err)
}

// evidenceErr is the status of an act whose record the evidence log refused: nothing
// was done, and the operator may try again. The log's own error stays in the log.
func evidenceErr() error {
	return status.Error(codes.Unavailable,
		"the evidence log could not record this; nothing was done, try again")
}

// internal logs an unexpected error and returns a status that does not reveal it.
func (s *Server) internal(ctx context.Context, op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	s.log.Error("remediation call failed", "op", op, logkey.Error, err)
	return status.Error(codes.Internal, "internal error")
}
