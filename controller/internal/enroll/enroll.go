// Package enroll implements the EnrollmentService: it exchanges a one-time token and a
// certificate signing request for a short-lived agent certificate. Every refusal looks the
// same to the caller ("enrollment refused"); the reason goes to the log and to metrics.
// Refusals are rate limited per source address.
package enroll

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/metrics"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Signer issues agent certificates. *ca.CA implements it.
type Signer interface {
	// SignAgent signs csrDER for spiffe://<domain>/tenant/<tenant>/agent/<agentID>, valid
	// for ttl, and returns the chain (leaf first, DER) and the parsed leaf.
	SignAgent(csrDER []byte, tenant, agentID string, ttl time.Duration) (
		chainDER [][]byte, leaf *x509.Certificate, err error)
	// SignAgentKey is SignAgent for pub, the ECDSA P-256 key of a request already
	// checked.
	SignAgentKey(pub crypto.PublicKey, tenant, agentID string, ttl time.Duration) (
		chainDER [][]byte, leaf *x509.Certificate, err error)
}

// Store is the part of store.Store that enrollment uses.
type Store interface {
	CheckToken(ctx context.Context, hash []byte, source netip.Addr, now time.Time) (
		store.Token, error)
	EnrollAgent(ctx context.Context, hash []byte, source netip.Addr, now time.Time,
		agent func(store.Token) (store.Agent, error)) (store.Token, store.Agent, error)
}

// Defaults for Config's optional fields.
const (
	DefaultCertTTL      = 24 * time.Hour
	DefaultRefusalBurst = 10
	DefaultMaxSources   = 10000
)

// DefaultRefusalRate lets a source be refused five times a minute once its burst is spent.
var DefaultRefusalRate = rate.Every(time.Minute / 5)

// Config configures a Server. Fields marked required must be set; the others have defaults.
type Config struct {
	Store        Store             // required
	CA           Signer            // required
	RootsDER     [][]byte          // required: trust bundle given to agents (root certs, DER)
	PolicyKeyDER []byte            // required: policy public key, PKIX DER
	TrustDomain  string            // required
	CertTTL      time.Duration     // agent certificate lifetime; default DefaultCertTTL
	RefusalRate  rate.Limit        // refusals per second per source; default DefaultRefusalRate
	RefusalBurst int               // refusals allowed at once; default DefaultRefusalBurst
	MaxSources   int               // sources the limiter remembers; default DefaultMaxSources
	Evidence     evidence.Recorder // stores each enrollment with its record; nil: no record
	Metrics      *metrics.Metrics  // nil: no metrics
	Log          *slog.Logger      // required
	Clock        func() time.Time  // nil: time.Now
}

// Server is the EnrollmentService. It is safe for concurrent use.
type Server struct {
	wardv1.UnimplementedEnrollmentServiceServer

	cfg     Config
	log     *slog.Logger
	clock   func() time.Time
	limiter *refusalLimiter
	tokens  tokenRefs
}

var _ wardv1.EnrollmentServiceServer = (*Server)(nil)

// New checks cfg, fills its defaults and returns a Server.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("enroll: no store")
	case cfg.CA == nil:
		return nil, errors.New("enroll: no CA")
	case len(cfg.RootsDER) == 0:
		return nil, errors.New("enroll: no trust bundle")
	case len(cfg.PolicyKeyDER) == 0:
		return nil, errors.New("enroll: no policy key")
	case cfg.TrustDomain == "":
		return nil, errors.New("enroll: no trust domain")
	case cfg.Log == nil:
		return nil, errors.New("enroll: no logger")
	}
	if cfg.CertTTL <= 0 {
		cfg.CertTTL = DefaultCertTTL
	}
	if cfg.RefusalRate <= 0 {
		cfg.RefusalRate = DefaultRefusalRate
	}
	if cfg.RefusalBurst <= 0 {
		cfg.RefusalBurst = DefaultRefusalBurst
	}
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = DefaultMaxSources
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Evidence == nil {
		cfg.Evidence = storeOnly{cfg.Store}
	}
	return &Server{
		cfg:     cfg,
		log:     cfg.Log,
		clock:   cfg.Clock,
		limiter: newRefusalLimiter(cfg.RefusalRate, cfg.RefusalBurst, cfg.MaxSources),
	}, nil
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g *grpc.Server) { wardv1.RegisterEnrollmentServiceServer(g, s) }

// refusal is a reason to refuse an enrollment. reason is a fixed word for logs and metrics;
// cause is for the log only.
type refusal struct {
	reason  string
	code    codes.Code
	tokenID string
	cause   error
}

func (r *refusal) Error() string { return "enrollment refused: " + r.reason }

// Enroll implements EnrollmentService.Enroll.
func (s *Server) Enroll(ctx context.Context, req *wardv1.EnrollRequest) (
	*wardv1.EnrollResponse, error) {
	src := sourceAddr(ctx)
	now := s.clock()

	if s.limiter.blocked(src, now) {
		s.cfg.Metrics.EnrollRefused("rate")
		s.log.Debug("enrollment rate limited", logkey.Peer, src.String())
		return nil, status.Error(codes.ResourceExhausted, "too many refused enrollments")
	}

	resp, err := s.enroll(ctx, req, src, now)
	if err != nil {
		return nil, s.toStatus(err, src, now)
	}
	return resp, nil
}

// enroll does the work of Enroll. Its errors are *refusal or internal failures.
func (s *Server) enroll(ctx context.Context, req *wardv1.EnrollRequest, src netip.Addr,
	now time.Time) (*wardv1.EnrollResponse, error) {
	// Check everything the caller controls before the token is redeemed, so that a bad
	// request does not use it up.
	pub, err := csrKey(req.GetCsrDer())
	if err != nil {
		return nil, &refusal{reason: "csr", code: codes.InvalidArgument, cause: err}
	}
	host, err := HostFacts(req.GetHost())
	if err != nil {
		return nil, &refusal{reason: "host", code: codes.InvalidArgument, cause: err}
	}
	secret := req.GetToken()
	if secret == "" || len(secret) > MaxTokenBytes {
		return nil, &refusal{reason: "token", code: codes.PermissionDenied}
	}
	// Which token it is, and a first check, so that a refused token costs no signature.
	hash := sha256.Sum256([]byte(secret))
	tok, err := s.tokens.lookup(ctx, s.cfg.Store, hash, src, now)
	if errors.Is(err, store.ErrTokenRefused) {
		return nil, &refusal{reason: "token", code: codes.PermissionDenied, tokenID: tok.id,
			cause: err}
	}
	if err != nil {
		return nil, fmt.Errorf("check token: %w", err)
	}

	agentID, err := newAgentID()
	if err != nil {
		return nil, err
	}
	chain, leaf, err := s.cfg.CA.SignAgentKey(pub, tok.tenant, agentID, s.cfg.CertTTL)
	if err != nil {
		return nil, fmt.Errorf("sign agent certificate (token %s): %w", tok.id, err)
	}
	agent := store.Agent{
		ID:          agentID,
		Tenant:      tok.tenant,
		Host:        host,
		TokenID:     tok.id,
		Tier:        tok.tier,
		EnrolledAt:  now,
		CertSerial:  leaf.SerialNumber.Text(16),
		CertExpires: leaf.NotAfter,
		Roles:       tok.roles, // fixed by the operator; the agent's claims are Host.Roles
	}

	// The agent gets its certificate only once the enrollment is in the evidence log. The
	// record, the token's use and the agent are stored in one transaction, or none of
	// them: a token used up or revoked since the check is refused there, and the
	// certificate just signed is dropped.
	err = s.record(ctx, store.Enrollment{Hash: hash[:], Source: src, Now: now,
		Agent: agent})
	if errors.Is(err, store.ErrTokenRefused) {
		s.tokens.forget(hash)
		return nil, &refusal{reason: "token", code: codes.PermissionDenied, tokenID: tok.id,
			cause: err}
	}
	if err != nil {
		return nil, err
	}

	s.cfg.Metrics.Enrolled()
	s.log.Info("agent enrolled", logkey.Agent, agentID, logkey.Tenant, tok.tenant,
		logkey.TokenID, tok.id, logkey.Serial, agent.CertSerial,
		logkey.NotAfter, agent.CertExpires, logkey.Peer, src.String())

	return &wardv1.EnrollResponse{
		AgentId:          agentID,
		Tenant:           tok.tenant,
		CertificateChain: chain,
		CaCertificates:   s.cfg.RootsDER,
		PolicyPublicKey:  s.cfg.PolicyKeyDER,
		TrustDomain:      s.cfg.TrustDomain,
	}, nil
}

// record stores en with its record in the tenant's evidence log.
func (s *Server) record(ctx context.Context, en store.Enrollment) error {
	a := en.Agent
	_, err := s.cfg.Evidence.Record(ctx, evidence.Entry{
		Tenant:  a.Tenant,
		Type:    evidence.TypeAgentEnrolled,
		Actor:   evidence.Actor{Kind: evidence.ActorAgent, ID: a.ID},
		Subject: a.ID,
		Data: map[string]any{
			"token_id": a.TokenID, "tier": a.Tier, "hostname": a.Host.Hostname,
			"os": a.Host.OS, "os_version": a.Host.OSVersion, "machine_id": a.Host.MachineID,
			"serial": a.CertSerial, "not_after": a.CertExpires,
			"source": en.Source.String(), "roles": a.AllowedRoles(),
		},
		Enrollment: &en,
	})
	if err != nil {
		return fmt.Errorf("record enrollment of %s: %w", a.ID, err)
	}
	return nil
}

// storeOnly is the Recorder of a Server without an evidence log: it stores enrollments
// and records nothing.
type storeOnly struct{ st Store }

func (r storeOnly) Record(ctx context.Context, e evidence.Entry) (evidence.Receipt, error) {
	en := e.Enrollment
	if en == nil {
		return evidence.Receipt{Tenant: e.Tenant}, nil
	}
	_, _, err := r.st.EnrollAgent(ctx, en.Hash, en.Source, en.Now,
		func(store.Token) (store.Agent, error) { return en.Agent, nil })
	if err != nil {
		return evidence.Receipt{}, err
	}
	return evidence.Receipt{Tenant: e.Tenant}, nil
}

// toStatus turns an error of enroll into the status the caller sees, after counting and
// logging it. Refusals count against the source's allowance.
func (s *Server) toStatus(err error, src netip.Addr, now time.Time) error {
	var r *refusal
	if !errors.As(err, &r) {
		s.log.Error("enrollment failed", logkey.Peer, src.String(), logkey.Error, err)
		return status.Error(codes.Internal, "enrollment failed")
	}

	s.limiter.refused(src, now)
	s.cfg.Metrics.EnrollRefused(r.reason)
	attrs := []any{logkey.Reason, r.reason, logkey.Peer, src.String()}
	if r.tokenID != "" {
		attrs = append(attrs, logkey.TokenID, r.tokenID)
	}
	if r.cause != nil {
		attrs = append(attrs, logkey.Error, r.cause)
	}
	s.log.Warn("enrollment refused", attrs...)

	if r.code == codes.InvalidArgument {
		return status.Error(codes.InvalidArgument, "bad enrollment request: "+r.reason)
	}
	return status.Error(codes.PermissionDenied, "enrollment refused")
}

// newAgentID returns a random agent id of 16 lower-case hex digits (64 bits).
func newAgentID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("agent id: %w", err)
	}
	id := hex.EncodeToString(b[:])
	if !identity.ValidName(id) {
		return "", fmt.Errorf("agent id: %q is not a valid name", id)
	}
	return id, nil
}

// sourceAddr returns the caller's IP address, or the zero Addr when unknown.
func sourceAddr(ctx context.Context) netip.Addr {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(p.Addr.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
