package adminapi

import (
	"context"
	"errors"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Operator certificate lifetimes.
const (
	DefaultOperatorCertTTL = 90 * 24 * time.Hour
	MaxOperatorCertTTL     = 365 * 24 * time.Hour
)

// CreateOperator registers an operator and signs its certificate. Admin only. A name is
// never reused, not even after revocation, so an old certificate can never come back to
// life.
func (s *Server) CreateOperator(ctx context.Context, req *wardv1.CreateOperatorRequest) (
	*wardv1.CreateOperatorResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	if err := sc.requireAdmin(); err != nil {
		return nil, err
	}
	op, ttl, err := s.operatorFromRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	op.CreatedAt, op.CreatedBy = s.clock().UTC(), sc.name()

	// Store first: a certificate is only ever signed for a name that this call created.
	err = s.store.CreateOperator(ctx, op)
	if errors.Is(err, store.ErrExists) {
		return nil, status.Errorf(codes.AlreadyExists, "operator %q already exists", op.Name)
	}
	if err != nil {
		return nil, s.internal(ctx, "create operator", err)
	}
	chain, leaf, err := s.ca.SignOperator(req.GetCsrDer(), op.Name, ttl)
	if err != nil {
		s.revokeUnissued(ctx, op.Name)
		return nil, s.internal(ctx, "sign operator", err)
	}

	if err := s.recordOperator(ctx, sc, op.Tenants, evidence.TypeOperatorCreated, op.Name,
		map[string]any{"role": string(op.Role), "tenants": op.Tenants,
			"serial": leaf.SerialNumber.Text(16), "not_after": leaf.NotAfter}); err != nil {
		return nil, err
	}
	s.log.Info("operator created", logkey.Operator, op.Name, "role", string(op.Role),
		"by", sc.name(), logkey.Serial, leaf.SerialNumber.Text(16), logkey.NotAfter,
		leaf.NotAfter)
	return &wardv1.CreateOperatorResponse{Operator: operatorProto(op),
		CertificateChain: chain, CaCertificates: s.ca.RootsDER()}, nil
}

// operatorFromRequest validates the request; the CSR is checked before anything is stored.
func (s *Server) operatorFromRequest(ctx context.Context, req *wardv1.CreateOperatorRequest) (
	store.Operator, time.Duration, error) {
	if !identity.ValidName(req.GetName()) {
		return store.Operator{}, 0, invalid("name", "lower-case letters, digits, dots and dashes")
	}
	role, ok := roleFromProto(req.GetRole())
	if !ok {
		return store.Operator{}, 0, invalid("role", "admin, technician or auditor required")
	}
	tenants := slices.Compact(slices.Sorted(slices.Values(req.GetTenants())))
	switch {
	case role == store.RoleTechnician && len(tenants) == 0:
		return store.Operator{}, 0, invalid("tenants", "a technician needs at least one tenant")
	case role == store.RoleAdmin && len(tenants) > 0:
		return store.Operator{}, 0, invalid("tenants", "an admin is not limited to tenants")
	}
	for _, t := range tenants {
		if !identity.ValidName(t) {
			return store.Operator{}, 0, invalid("tenants", "not a valid tenant id")
		}
		if _, err := s.store.GetTenant(ctx, t); errors.Is(err, store.ErrNotFound) {
			return store.Operator{}, 0, notFound("tenant", t)
		} else if err != nil {
			return store.Operator{}, 0, s.internal(ctx, "get tenant", err)
		}
	}
	ttl := DefaultOperatorCertTTL
	if d := req.GetCertTtl(); d != nil {
		ttl = d.AsDuration()
		if d.CheckValid() != nil || ttl <= 0 || ttl > MaxOperatorCertTTL {
			return store.Operator{}, 0, invalid("cert_ttl",
				"must be above zero and at most 365 days")
		}
	}
	if _, err := ca.CheckCSR(req.GetCsrDer()); err != nil {
		return store.Operator{}, 0, invalid("csr_der", csrProblem(err))
	}
	return store.Operator{Name: req.GetName(), Role: role, Tenants: tenants}, ttl, nil
}

// csrProblem returns what was wrong with a CSR, without the "ca: bad ..." prefix.
func csrProblem(err error) string {
	msg, prefix := err.Error(), ca.ErrBadCSR.Error()+": "
	if len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		return msg[len(prefix):]
	}
	return msg
}

// revokeUnissued marks an operator whose certificate could not be signed as revoked, so
// that the name is not left half-created and usable.
func (s *Server) revokeUnissued(ctx context.Context, name string) {
	_, err := s.store.UpdateOperator(ctx, name, func(o *store.Operator) error {
		o.Revoked = true
		return nil
	})
	if err != nil {
		s.log.Error("revoke operator without certificate", logkey.Operator, name,
			logkey.Error, err)
	}
}

// ListOperators lists operators. Admin and auditor.
func (s *Server) ListOperators(ctx context.Context, _ *wardv1.ListOperatorsRequest) (
	*wardv1.ListOperatorsResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	if sc.op.Role != store.RoleAdmin && sc.op.Role != store.RoleAuditor {
		return nil, status.Error(codes.PermissionDenied,
			"permission denied: admin or auditor role required")
	}
	all, err := s.store.ListOperators(ctx)
	if err != nil {
		return nil, s.internal(ctx, "list operators", err)
	}
	resp := &wardv1.ListOperatorsResponse{}
	for _, o := range all {
		resp.Operators = append(resp.Operators, operatorProto(o))
	}
	return resp, nil
}

// RevokeOperator revokes an operator; its certificates are refused from then on. Admin
// only; an admin cannot revoke itself (that could lock the installation out).
func (s *Server) RevokeOperator(ctx context.Context, req *wardv1.RevokeOperatorRequest) (
	*wardv1.RevokeOperatorResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	if err := sc.requireAdmin(); err != nil {
		return nil, err
	}
	if !identity.ValidName(req.GetName()) {
		return nil, invalid("name", "not a valid operator name")
	}
	if req.GetName() == sc.name() {
		return nil, status.Error(codes.FailedPrecondition, "an operator cannot revoke itself")
	}

	op, err := s.store.UpdateOperator(ctx, req.GetName(), func(o *store.Operator) error {
		o.Revoked = true
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("operator", req.GetName())
	}
	if err != nil {
		return nil, s.internal(ctx, "revoke operator", err)
	}
	if err := s.recordOperator(ctx, sc, op.Tenants, evidence.TypeOperatorRevoked, op.Name,
		map[string]any{"role": string(op.Role)}); err != nil {
		return nil, err
	}
	s.log.Info("operator revoked", logkey.Operator, op.Name, "by", sc.name())
	return &wardv1.RevokeOperatorResponse{Operator: operatorProto(op)}, nil
}
