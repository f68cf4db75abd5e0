// Package authz decides who may call which gRPC method of the controller. The caller's
// identity comes only from the verified client certificate (the TLS peer's verified chain),
// and must belong to the installation's trust domain:
//
//	/ward.v1.EnrollmentService/*, /grpc.health.v1.Health/*   anyone, no certificate needed
//	/ward.v1.AgentService/*            an agent that exists in the tenant its certificate
//	                                   names and is not revoked
//	/ward.v1.AdminService/*, /ward.v1.RemediationService/*, /grpc.reflection.*
//	                                   an operator that exists and is not revoked
//	/ward.v1.EvidenceService/*         an operator that exists and is not revoked (role
//	                                   and tenant checks in package evidence)
//	/ward.v1.InventoryService/*        an operator that exists and is not revoked (role
//	                                   and tenant checks in package inventory)
//	anything else                      nobody
//
// Denials answer codes.Unauthenticated when there is no verified certificate and
// codes.PermissionDenied otherwise, with a generic message; the reason goes to the log and
// to the onDenied callback. Role checks within the admin API live in package adminapi.
package authz

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/logkey"
)

// Caller is the authenticated party of a call, as the interceptors put it in the context.
type Caller struct {
	ID identity.ID
	// Operator is the stored operator for operator callers, nil otherwise. An agent
	// caller's record is checked (enrolled, in its tenant, not revoked) but not kept: an
	// agent's stream lives for days, and the record with it would cost every connection
	// about a kilobyte.
	Operator *store.Operator
}

type callerKey struct{}

// CallerFrom returns the caller the interceptors authorised. ok is false for methods that
// need no certificate (enrollment, health) and outside intercepted calls.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// WithCaller returns ctx carrying c. It is for tests of handlers that read CallerFrom.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// Method classes.
type access int

const (
	accessNone     access = iota // nobody
	accessOpen                   // no certificate needed
	accessAgent                  // agents
	accessOperator               // operators
)

func accessFor(method string) access {
	switch {
	case strings.HasPrefix(method, "/ward.v1.EnrollmentService/"),
		strings.HasPrefix(method, "/grpc.health.v1.Health/"):
		return accessOpen
	case strings.HasPrefix(method, "/ward.v1.AgentService/"):
		return accessAgent
	case strings.HasPrefix(method, "/ward.v1.AdminService/"),
		strings.HasPrefix(method, "/ward.v1.EvidenceService/"),
		strings.HasPrefix(method, "/ward.v1.RemediationService/"),
		strings.HasPrefix(method, "/ward.v1.InventoryService/"),
		strings.HasPrefix(method, "/grpc.reflection."):
		return accessOperator
	}
	return accessNone
}

// Authorizer implements the rules of the package doc. It is safe for concurrent use.
type Authorizer struct {
	store       store.Store
	trustDomain string
	log         *slog.Logger
	onDenied    func(method, reason string)
}

// New returns an Authorizer that looks callers up in st. log may be nil (discard);
// onDenied, when not nil, is called once per denied call with the method and the reason.
func New(st store.Store, trustDomain string, log *slog.Logger,
	onDenied func(method, reason string)) *Authorizer {
	if st == nil {
		panic("authz: nil store")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if onDenied == nil {
		onDenied = func(string, string) {}
	}
	return &Authorizer{store: st, trustDomain: trustDomain, log: log, onDenied: onDenied}
}

// UnaryInterceptor authorises unary calls.
func (a *Authorizer) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo,
		handler grpc.UnaryHandler) (any, error) {
		ctx, err := a.Authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor authorises streams when they open.
func (a *Authorizer) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo,
		handler grpc.StreamHandler) error {
		ctx, err := a.Authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &stream{ServerStream: ss, ctx: ctx})
	}
}

type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }

// denial is a refused call: the status the client sees and the reason only we see.
type denial struct {
	code   codes.Code
	reason string
}

// Authorize applies the rules to a call of method with ctx (a server context carrying the
// gRPC peer). It returns ctx with the Caller attached, or a status error.
func (a *Authorizer) Authorize(ctx context.Context, method string) (context.Context, error) {
	acc := accessFor(method)
	if acc == accessOpen {
		return ctx, nil
	}

	id, d := a.identify(ctx)
	if d == nil {
		var c Caller
		c, d = a.admit(ctx, acc, id)
		if d == nil {
			return context.WithValue(ctx, callerKey{}, c), nil
		}
	}
	if d.code == codes.Unavailable {
		a.log.Warn("authorisation unavailable", logkey.Method, method, logkey.Identity,
			idString(id), logkey.Reason, d.reason)
		return nil, status.Error(codes.Unavailable, "authorisation temporarily unavailable")
	}

	a.log.Warn("call denied", logkey.Method, method, logkey.Identity, idString(id),
		logkey.Peer, peerAddr(ctx), logkey.Reason, d.reason)
	a.onDenied(method, d.reason)
	if d.code == codes.Unauthenticated {
		return nil, status.Error(codes.Unauthenticated, "a valid client certificate is required")
	}
	return nil, status.Error(codes.PermissionDenied, "permission denied")
}

// identify reads the Ward identity from the peer's verified certificate.
func (a *Authorizer) identify(ctx context.Context) (identity.ID, *denial) {
	leaf := verifiedLeaf(ctx)
	if leaf == nil {
		return identity.ID{}, &denial{codes.Unauthenticated, "no verified client certificate"}
	}
	return a.identifyCert(leaf)
}

func (a *Authorizer) identifyCert(leaf *x509.Certificate) (identity.ID, *denial) {
	id, err := identity.FromCertificate(leaf)
	if err != nil {
		return identity.ID{}, &denial{codes.PermissionDenied,
			"certificate carries no ward identity"}
	}
	if id.Domain != a.trustDomain {
		return id, &denial{codes.PermissionDenied, "identity of another trust domain"}
	}
	return id, nil
}

// admit checks that id may use methods of class acc and is a live party in the store.
func (a *Authorizer) admit(ctx context.Context, acc access, id identity.ID) (Caller, *denial) {
	switch {
	case acc == accessAgent && id.Kind == identity.KindAgent:
		if d := a.liveAgent(ctx, id); d != nil {
			return Caller{}, d
		}
		return Caller{ID: id}, nil
	case acc == accessOperator && id.Kind == identity.KindOperator:
		op, d := a.liveOperator(ctx, id)
		if d != nil {
			return Caller{}, d
		}
		return Caller{ID: id, Operator: &op}, nil
	case acc == accessNone:
		return Caller{}, &denial{codes.PermissionDenied, "method not served"}
	}
	return Caller{}, &denial{codes.PermissionDenied, id.Kind.String() + " identity not allowed"}
}

func (a *Authorizer) liveAgent(ctx context.Context, id identity.ID) *denial {
	ag, err := a.store.GetAgent(ctx, id.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &denial{codes.PermissionDenied, "unknown agent"}
	case err != nil:
		return &denial{codes.Unavailable, "store: " + err.Error()}
	case ag.Tenant != id.Tenant:
		return &denial{codes.PermissionDenied, "agent belongs to another tenant"}
	case ag.Revoked:
		return &denial{codes.PermissionDenied, "agent revoked"}
	}
	return nil
}

func (a *Authorizer) liveOperator(ctx context.Context, id identity.ID) (store.Operator,
	*denial) {
	op, err := a.store.GetOperator(ctx, id.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return op, &denial{codes.PermissionDenied, "unknown operator"}
	case err != nil:
		return op, &denial{codes.Unavailable, "store: " + err.Error()}
	case op.Revoked:
		return op, &denial{codes.PermissionDenied, "operator revoked"}
	}
	return op, nil
}

// verifiedLeaf returns the leaf of the peer's first verified chain, or nil.
func verifiedLeaf(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil
	}
	return leafOf(info.State)
}

func leafOf(cs tls.ConnectionState) *x509.Certificate {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return nil
	}
	return cs.VerifiedChains[0][0]
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

func idString(id identity.ID) string {
	if id.Kind == identity.KindUnknown {
		return ""
	}
	return id.String()
}

// VerifyConnection is a tls.Config.VerifyConnection hook that refuses, at the handshake, a
// verified client certificate naming an agent or operator that does not exist or is
// revoked, or an identity of another trust domain. Connections without a client
// certificate pass (enrollment needs none); the per-call rules still apply to every call.
// This is what makes a revocation take effect on the peer's next handshake.
func (a *Authorizer) VerifyConnection(cs tls.ConnectionState) error {
	leaf := leafOf(cs)
	if leaf == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), handshakeLookupTimeout)
	defer cancel()

	id, d := a.identifyCert(leaf)
	if d == nil {
		switch id.Kind {
		case identity.KindAgent:
			d = a.liveAgent(ctx, id)
		case identity.KindOperator:
			_, d = a.liveOperator(ctx, id)
		}
	}
	if d == nil {
		return nil
	}
	a.log.Warn("handshake refused", logkey.Identity, idString(id), logkey.Serial,
		leaf.SerialNumber.Text(16), logkey.Reason, d.reason)
	if d.code != codes.Unavailable {
		a.onDenied(HandshakeMethod, d.reason)
	}
	return errors.New("authz: client certificate refused")
}

// HandshakeMethod is the method name passed to onDenied for refusals in VerifyConnection.
const HandshakeMethod = "tls-handshake"

const handshakeLookupTimeout = 5 * time.Second
