package adminapi

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/store"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// ts converts t; the zero time becomes nil (unset).
func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func tenantProto(t store.Tenant) *wardv1.Tenant {
	return &wardv1.Tenant{Id: t.ID, DisplayName: t.DisplayName, CreatedAt: ts(t.CreatedAt),
		CreatedBy: t.CreatedBy}
}

func tokenProto(t store.Token) *wardv1.Token {
	p := &wardv1.Token{Id: t.ID, Tenant: t.Tenant, ExpiresAt: ts(t.ExpiresAt),
		UsesLeft: t.UsesLeft, Tier: t.Tier, CreatedAt: ts(t.CreatedAt),
		CreatedBy: t.CreatedBy, Revoked: t.Revoked, Roles: t.Roles}
	if t.CIDR.IsValid() {
		p.Cidr = t.CIDR.String()
	}
	return p
}

func agentProto(a store.Agent) *wardv1.Agent {
	return &wardv1.Agent{
		Id:          a.ID,
		Tenant:      a.Tenant,
		Hostname:    a.Host.Hostname,
		Online:      a.Online && !a.Revoked,
		LastSeen:    ts(a.LastSeen),
		CertExpires: ts(a.CertExpires),
		CertSerial:  a.CertSerial,
		EnrolledAt:  ts(a.EnrolledAt),
		Revoked:     a.Revoked,
		Host: &wardv1.HostFacts{
			Hostname:     a.Host.Hostname,
			Os:           a.Host.OS,
			OsVersion:    a.Host.OSVersion,
			Kernel:       a.Host.Kernel,
			Arch:         a.Host.Arch,
			MachineId:    a.Host.MachineID,
			Addresses:    a.Host.Addresses,
			AgentVersion: a.Host.AgentVersion,
			Roles:        a.Host.Roles,
		},
		AckedSeq: a.AckedSeq,
		Tier:     a.Tier,
		TokenId:  a.TokenID,
		Roles:    a.AllowedRoles(),
	}
}

func operatorProto(o store.Operator) *wardv1.Operator {
	return &wardv1.Operator{Name: o.Name, Role: roleProto(o.Role), Tenants: o.Tenants,
		CreatedAt: ts(o.CreatedAt), CreatedBy: o.CreatedBy, Revoked: o.Revoked}
}

func roleProto(r store.Role) wardv1.Role {
	switch r {
	case store.RoleAdmin:
		return wardv1.Role_ROLE_ADMIN
	case store.RoleTechnician:
		return wardv1.Role_ROLE_TECHNICIAN
	case store.RoleAuditor:
		return wardv1.Role_ROLE_AUDITOR
	}
	return wardv1.Role_ROLE_UNSPECIFIED
}

func roleFromProto(r wardv1.Role) (store.Role, bool) {
	switch r {
	case wardv1.Role_ROLE_ADMIN:
		return store.RoleAdmin, true
	case wardv1.Role_ROLE_TECHNICIAN:
		return store.RoleTechnician, true
	case wardv1.Role_ROLE_AUDITOR:
		return store.RoleAuditor, true
	}
	return "", false
}
