// Package adminapi serves ward.v1.AdminService, the operator API that wardctl speaks.
// The authz interceptors have already checked that the caller is a live operator; this
// package enforces roles and tenant scope:
//
//   - admin: everything, in every tenant;
//   - technician: reads and acts (tokens, agent revocation) within its tenants;
//   - auditor: reads only, within its tenants, or everywhere when it has none.
//
// Writes outside a caller's role or tenants answer PermissionDenied. An object addressed
// by id that lies in a tenant the caller cannot see answers NotFound, as an unknown one
// does, so that ids do not leak across tenants. Validation errors are InvalidArgument
// naming the field. Store types are converted to protobuf here, at the edge.
package adminapi

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/controller/internal/authz"
	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// StreamCloser closes an agent's open stream, if it has one. The agent stream registry
// implements it; its methods must be safe for concurrent use and must not block for long.
type StreamCloser interface {
	// CloseAgent ends the stream of a revoked agent.
	CloseAgent(agentID string)
	// ResetAgent ends the stream of an agent whose roles changed; the agent reconnects and
	// its next Hello is checked against the new roles.
	ResetAgent(agentID string)
}

// Config configures a Server.
type Config struct {
	// Store holds the state. Required.
	Store store.Store
	// CA signs operator certificates. Required.
	CA *ca.CA
	// Log receives the audit trail of changes (info) and internal errors; nil discards.
	Log *slog.Logger
	// Streams closes a revoked agent's stream; nil when there are none to close.
	Streams StreamCloser
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Recorder records every change in the tenant's evidence log before the call is
	// acknowledged; nil records nothing.
	Recorder evidence.Recorder
}

// Server implements wardv1.AdminServiceServer. It is safe for concurrent use.
type Server struct {
	wardv1.UnimplementedAdminServiceServer

	store    store.Store
	ca       *ca.CA
	log      *slog.Logger
	streams  StreamCloser
	clock    func() time.Time
	recorder evidence.Recorder
}

var _ wardv1.AdminServiceServer = (*Server)(nil)

// New returns a Server. It panics when Store or CA is missing (a programming error).
func New(cfg Config) *Server {
	switch {
	case cfg.Store == nil:
		panic("adminapi: Config.Store is required")
	case cfg.CA == nil:
		panic("adminapi: Config.CA is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Streams == nil {
		cfg.Streams = noStreams{}
	}
	if cfg.Recorder == nil {
		cfg.Recorder = evidence.Discard
	}
	return &Server{store: cfg.Store, ca: cfg.CA, log: cfg.Log, streams: cfg.Streams,
		clock: cfg.Clock, recorder: cfg.Recorder}
}

type noStreams struct{}

func (noStreams) CloseAgent(string) {}
func (noStreams) ResetAgent(string) {}

// scope is what the calling operator may see and change.
type scope struct {
	op *store.Operator
}

// callerScope returns the calling operator's scope; PermissionDenied outside an
// operator call (the interceptors should make that impossible).
func callerScope(ctx context.Context) (scope, error) {
	c, ok := authz.CallerFrom(ctx)
	if !ok || c.Operator == nil {
		return scope{}, status.Error(codes.PermissionDenied, "permission denied")
	}
	return scope{op: c.Operator}, nil
}

func (s scope) name() string  { return s.op.Name }
func (s scope) isAdmin() bool { return s.op.Role == store.RoleAdmin }

// canSee reports whether the caller may read objects of tenant.
func (s scope) canSee(tenant string) bool {
	switch s.op.Role {
	case store.RoleAdmin:
		return true
	case store.RoleTechnician:
		return slices.Contains(s.op.Tenants, tenant)
	case store.RoleAuditor:
		return len(s.op.Tenants) == 0 || slices.Contains(s.op.Tenants, tenant)
	}
	return false
}

// canWrite reports whether the caller may act within tenant.
func (s scope) canWrite(tenant string) bool {
	switch s.op.Role {
	case store.RoleAdmin:
		return true
	case store.RoleTechnician:
		return slices.Contains(s.op.Tenants, tenant)
	}
	return false
}

// requireAdmin answers PermissionDenied for every role but admin.
func (s scope) requireAdmin() error {
	if !s.isAdmin() {
		return status.Error(codes.PermissionDenied, "permission denied: admin role required")
	}
	return nil
}

// requireWrite answers PermissionDenied unless the caller may act within tenant.
func (s scope) requireWrite(tenant string) error {
	if !s.canWrite(tenant) {
		return status.Errorf(codes.PermissionDenied,
			"permission denied: %s may not change tenant %s", s.op.Role, tenant)
	}
	return nil
}

func invalid(field, why string) error {
	return status.Errorf(codes.InvalidArgument, "%s: %s", field, why)
}

func notFound(what, id string) error {
	return status.Errorf(codes.NotFound, "%s %q not found", what, id)
}

// internal logs an unexpected error and returns a status that does not reveal it.
func (s *Server) internal(ctx context.Context, op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	s.log.Error("admin call failed", "op", op, logkey.Error, err)
	return status.Error(codes.Internal, "internal error")
}
