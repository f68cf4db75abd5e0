package adminapi

import (
	"context"
	"errors"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// maxText bounds free-text fields (display names, reasons).
const maxText = 200

// CreateTenant adds a tenant. Admin only.
func (s *Server) CreateTenant(ctx context.Context, req *wardv1.CreateTenantRequest) (
	*wardv1.CreateTenantResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	if err := sc.requireAdmin(); err != nil {
		return nil, err
	}
	if !identity.ValidName(req.GetId()) {
		return nil, invalid("id", "lower-case letters, digits and dashes, 1 to 63 characters")
	}
	display := req.GetDisplayName()
	if display == "" {
		display = req.GetId()
	}
	if err := checkText("display_name", display); err != nil {
		return nil, err
	}

	t := store.Tenant{ID: req.GetId(), DisplayName: display, CreatedAt: s.clock().UTC(),
		CreatedBy: sc.name()}
	err = s.store.CreateTenant(ctx, t)
	if errors.Is(err, store.ErrExists) {
		return nil, status.Errorf(codes.AlreadyExists, "tenant %q already exists", t.ID)
	}
	if err != nil {
		return nil, s.internal(ctx, "create tenant", err)
	}
	if err := s.record(ctx, sc, t.ID, evidence.TypeTenantCreated, t.ID,
		map[string]any{"display_name": t.DisplayName}); err != nil {
		return nil, err
	}
	s.log.Info("tenant created", logkey.Tenant, t.ID, logkey.Operator, sc.name())
	return &wardv1.CreateTenantResponse{Tenant: tenantProto(t)}, nil
}

// ListTenants lists the tenants the caller can see.
func (s *Server) ListTenants(ctx context.Context, _ *wardv1.ListTenantsRequest) (
	*wardv1.ListTenantsResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	all, err := s.store.ListTenants(ctx)
	if err != nil {
		return nil, s.internal(ctx, "list tenants", err)
	}
	resp := &wardv1.ListTenantsResponse{}
	for _, t := range all {
		if sc.canSee(t.ID) {
			resp.Tenants = append(resp.Tenants, tenantProto(t))
		}
	}
	return resp, nil
}

// checkTenantArg validates a tenant named in a request (field) and checks that it exists
// and that the caller can see it; both failures answer NotFound alike.
func (s *Server) checkTenantArg(ctx context.Context, sc scope, field, tenant string) error {
	if !identity.ValidName(tenant) {
		return invalid(field, "not a valid tenant id")
	}
	if !sc.canSee(tenant) {
		return notFound("tenant", tenant)
	}
	_, err := s.store.GetTenant(ctx, tenant)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("tenant", tenant)
	}
	if err != nil {
		return s.internal(ctx, "get tenant", err)
	}
	return nil
}

func checkText(field, v string) error {
	switch {
	case !utf8.ValidString(v):
		return invalid(field, "not valid UTF-8")
	case utf8.RuneCountInString(v) > maxText:
		return invalid(field, "longer than 200 characters")
	}
	return nil
}
