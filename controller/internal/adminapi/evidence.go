package adminapi

import (
	"context"
	"fmt"

	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
)

// record appends an operator action to tenant's evidence log before the call is
// acknowledged. When recording fails the call fails (Internal): the change is then made
// but never acknowledged, never acknowledged without its record.
func (s *Server) record(ctx context.Context, sc scope, tenant, typ, subject string,
	data any) error {
	_, err := s.recorder.Record(ctx, evidence.Entry{Tenant: tenant, Type: typ,
		Actor:   evidence.Actor{Kind: evidence.ActorOperator, ID: sc.name()},
		Subject: subject, Data: data})
	if err != nil {
		return s.internal(ctx, "record "+typ, fmt.Errorf("evidence: %w", err))
	}
	return nil
}

// recordOperator records an operator change in the log of every tenant the operator
// covers: its tenants, or every tenant when it has none (admins, auditors of all).
func (s *Server) recordOperator(ctx context.Context, sc scope, tenants []string, typ,
	name string, data any) error {
	if len(tenants) == 0 {
		all, err := s.store.ListTenants(ctx)
		if err != nil {
			return s.internal(ctx, "record "+typ, err)
		}
		for _, t := range all {
			tenants = append(tenants, t.ID)
		}
	}
	for _, t := range tenants {
		if err := s.record(ctx, sc, t, typ, name, data); err != nil {
			return err
		}
	}
	return nil
}

// cidrText is a token's source network for the record, "" for any.
func cidrText(t store.Token) string {
	if t.CIDR.IsValid() {
		return t.CIDR.String()
	}
	return ""
}
