package agentapi

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/controller/internal/enroll"
	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Renew implements AgentService.Renew: a new certificate for exactly the caller's
// identity, whatever the CSR names. An open stream is not affected.
func (s *Server) Renew(ctx context.Context, req *wardv1.RenewRequest) (
	*wardv1.RenewResponse, error) {
	caller, err := s.agentCaller(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.enrolledAgent(ctx, caller); err != nil {
		return nil, err
	}
	if err := enroll.CheckCSR(req.GetCsrDer()); err != nil {
		s.log.Warn("renewal refused", logkey.Agent, caller.Name, logkey.Error, err)
		return nil, status.Error(codes.InvalidArgument, "bad certificate signing request")
	}

	chain, leaf, err := s.cfg.CA.SignAgent(req.GetCsrDer(), caller.Tenant, caller.Name,
		s.cfg.CertTTL)
	if err != nil {
		s.log.Error("sign renewed certificate", logkey.Agent, caller.Name, logkey.Error, err)
		return nil, status.Error(codes.Internal, "renewal failed")
	}

	serial := leaf.SerialNumber.Text(16)
	_, err = s.cfg.Store.UpdateAgent(ctx, caller.Name, func(a *store.Agent) error {
		if a.Revoked {
			return errRevoked
		}
		a.CertSerial = serial
		a.CertExpires = leaf.NotAfter
		return nil
	})
	if errors.Is(err, errRevoked) {
		return nil, status.Error(codes.PermissionDenied, "agent revoked")
	}
	if err != nil {
		s.log.Error("record renewed certificate", logkey.Agent, caller.Name,
			logkey.Error, err)
		return nil, status.Error(codes.Unavailable, "store unavailable")
	}

	// The agent gets its certificate only once the renewal is in the evidence log.
	_, err = s.cfg.Evidence.Record(ctx, evidence.Entry{
		Tenant:  caller.Tenant,
		Type:    evidence.TypeAgentRenewed,
		Actor:   evidence.Actor{Kind: evidence.ActorAgent, ID: caller.Name},
		Subject: caller.Name,
		Data:    map[string]any{"serial": serial, "not_after": leaf.NotAfter},
	})
	if err != nil {
		s.log.Error("record renewal", logkey.Agent, caller.Name, logkey.Error, err)
		return nil, status.Error(codes.Unavailable, "evidence log unavailable")
	}

	s.log.Info("agent certificate renewed", logkey.Agent, caller.Name,
		logkey.Tenant, caller.Tenant, logkey.Serial, serial, logkey.NotAfter, leaf.NotAfter)
	return &wardv1.RenewResponse{CertificateChain: chain, CaCertificates: s.cfg.RootsDER}, nil
}
