// Package agentapi implements the AgentService: the agent's long-lived Connect stream and
// certificate renewal. It keeps one stream per agent (a newer one replaces the older),
// closes the stream of a revoked agent at once when told (CloseAgent) and within a few
// seconds when the revocation happened elsewhere (a periodic scan of the store), and
// acknowledges each message only after the store has committed it.
//
// The agent's identity comes from its verified client certificate, never from a message.
package agentapi

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/controller/internal/enroll"
	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/metrics"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Defaults for Config's optional fields.
const (
	DefaultHeartbeatInterval = 30 * time.Second
	DefaultCertTTL           = 24 * time.Hour
	DefaultMaxMessageBytes   = 4 << 20
	DefaultMessageRate       = rate.Limit(50)
	DefaultMessageBurst      = 200
	DefaultHelloTimeout      = 30 * time.Second
	DefaultRevocationScan    = 2 * time.Second
)

// CommandOwners tells which agent a command was addressed to; ErrUnknownCommand (wrapped)
// means no such command.
type CommandOwners interface {
	CommandAgent(ctx context.Context, commandID string) (agentID string, err error)
}

// ErrUnknownCommand is what CommandOwners returns for a command id it does not know.
var ErrUnknownCommand = errors.New("agentapi: unknown command")

// Config configures a Server. Fields marked required must be set; the others have defaults.
type Config struct {
	Store       store.Store   // required
	CA          enroll.Signer // required: signs renewed certificates
	RootsDER    [][]byte      // required: trust bundle returned by Renew (root certs, DER)
	TrustDomain string        // required: only agents of this domain are served

	// HeartbeatInterval is what Welcome tells agents; default DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// CertTTL is the lifetime of renewed certificates; default DefaultCertTTL.
	CertTTL time.Duration
	// MaxMessageBytes is what Welcome tells agents; it must equal the gRPC server's
	// MaxRecvMsgSize, which enforces it. Default DefaultMaxMessageBytes.
	MaxMessageBytes int
	// MessageRate and MessageBurst bound each agent's messages (a token bucket); over the
	// rate the stream ends with ResourceExhausted. Defaults DefaultMessageRate and
	// DefaultMessageBurst.
	MessageRate  rate.Limit
	MessageBurst int
	// HelloTimeout is how long a new stream may take to send its Hello; default
	// DefaultHelloTimeout.
	HelloTimeout time.Duration
	// RevocationScan is how often Run checks the store for revoked agents with an open
	// stream here; default DefaultRevocationScan.
	RevocationScan time.Duration
	// Commands, when set, lets Connect refuse results for commands of other agents. Nil:
	// command ids are not checked.
	Commands CommandOwners
	// Observer, when set, is told of new sessions and committed messages.
	Observer Observer
	// Processor, when set, handles committed messages before they are acknowledged.
	Processor Processor

	Evidence evidence.Recorder // renewals are recorded; nil: evidence.Discard
	Metrics  *metrics.Metrics  // nil: no metrics
	Log      *slog.Logger      // required
	Clock    func() time.Time  // nil: time.Now
}

// Server is the AgentService. It is safe for concurrent use. Run must be running for
// revocations made through another replica to close streams here.
type Server struct {
	wardv1.UnimplementedAgentServiceServer

	cfg      Config
	log      *slog.Logger
	clock    func() time.Time
	sessions *registry
}

var _ wardv1.AgentServiceServer = (*Server)(nil)

// New checks cfg, fills its defaults and returns a Server.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("agentapi: no store")
	case cfg.CA == nil:
		return nil, errors.New("agentapi: no CA")
	case len(cfg.RootsDER) == 0:
		return nil, errors.New("agentapi: no trust bundle")
	case cfg.TrustDomain == "":
		return nil, errors.New("agentapi: no trust domain")
	case cfg.Log == nil:
		return nil, errors.New("agentapi: no logger")
	}
	defaultDuration(&cfg.HeartbeatInterval, DefaultHeartbeatInterval)
	defaultDuration(&cfg.CertTTL, DefaultCertTTL)
	defaultDuration(&cfg.HelloTimeout, DefaultHelloTimeout)
	defaultDuration(&cfg.RevocationScan, DefaultRevocationScan)
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.MessageRate <= 0 {
		cfg.MessageRate = DefaultMessageRate
	}
	if cfg.MessageBurst <= 0 {
		cfg.MessageBurst = DefaultMessageBurst
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Evidence == nil {
		cfg.Evidence = evidence.Discard
	}
	return &Server{cfg: cfg, log: cfg.Log, clock: cfg.Clock, sessions: newRegistry()}, nil
}

func defaultDuration(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g *grpc.Server) { wardv1.RegisterAgentServiceServer(g, s) }

// CloseAgent ends the agent's open stream, if any, at once with PermissionDenied. It is
// what the admin API calls after revoking an agent; it implements adminapi.StreamCloser.
func (s *Server) CloseAgent(agentID string) {
	if s.sessions.close(agentID, errRevoked) {
		s.cfg.Metrics.StreamClosed("revoked")
		s.log.Info("agent stream closed", logkey.Agent, agentID, logkey.Reason, "revoked")
	}
}

// Connected reports whether the agent has an open stream to this controller.
func (s *Server) Connected(agentID string) bool {
	return s.sessions.has(agentID)
}

// Run closes the streams of agents revoked (or removed) in the store, checking every
// RevocationScan, until ctx ends. Then it closes every stream with Unavailable, refuses
// new ones, waits for the goroutines serving them and returns nil. Run once per Server.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.RevocationScan)
	defer t.Stop()

	for {
		select {
		case <-ctx.Done():
			s.sessions.closeAll(errShutdown)
			s.sessions.workers.Wait()
			return nil
		case <-t.C:
			s.sessions.pruneLimiters()
			if err := s.closeRevoked(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("revocation scan", logkey.Error, err)
			}
		}
	}
}

// closeRevoked closes the open streams of agents that the store says are revoked. One
// read of the store's revocation index serves every stream, whatever the number of
// agents; a revocation made through this controller's admin API closes the stream at
// once (CloseAgent), this catches the ones made elsewhere.
func (s *Server) closeRevoked(ctx context.Context) error {
	open := s.sessions.snapshot()
	if len(open) == 0 {
		return nil
	}

	revoked, err := s.cfg.Store.RevokedAgents(ctx)
	if err != nil {
		return fmt.Errorf("list revoked agents: %w", err)
	}
	for id := range open {
		if revoked[id] {
			s.CloseAgent(id)
		}
	}
	return nil
}

// agentCaller returns the agent identity of the verified client certificate on ctx's
// connection. Anything else (no certificate, another kind or trust domain) is an error
// suitable for the caller: PermissionDenied.
func (s *Server) agentCaller(ctx context.Context) (identity.ID, error) {
	cert := peerCertificate(ctx)
	if cert == nil {
		return identity.ID{}, status.Error(codes.Unauthenticated, "client certificate required")
	}
	id, err := identity.FromCertificate(cert)
	if err != nil || id.Kind != identity.KindAgent || id.Domain != s.cfg.TrustDomain {
		return identity.ID{}, status.Error(codes.PermissionDenied, "agents only")
	}
	return id, nil
}

// enrolledAgent loads the caller's agent record and checks that it exists, is not revoked
// and belongs to the caller's tenant. Failures are gRPC statuses.
func (s *Server) enrolledAgent(ctx context.Context, id identity.ID) (store.Agent, error) {
	a, err := s.cfg.Store.GetAgent(ctx, id.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.log.Warn("unknown agent refused", logkey.Identity, id.String())
		return store.Agent{}, status.Error(codes.PermissionDenied, "agent not enrolled")
	case err != nil:
		s.log.Error("load agent", logkey.Agent, id.Name, logkey.Error, err)
		return store.Agent{}, status.Error(codes.Unavailable, "store unavailable")
	case a.Revoked:
		s.log.Warn("revoked agent refused", logkey.Identity, id.String())
		return store.Agent{}, status.Error(codes.PermissionDenied, "agent revoked")
	case a.Tenant != id.Tenant:
		s.log.Warn("agent tenant mismatch", logkey.Identity, id.String(),
			logkey.Tenant, a.Tenant)
		return store.Agent{}, status.Error(codes.PermissionDenied, "agent not enrolled")
	}
	return a, nil
}

// peerCertificate returns the verified leaf certificate of ctx's connection, or nil.
func peerCertificate(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return info.State.VerifiedChains[0][0]
}

// ResetAgent ends the agent's open stream, if any, with Aborted: its roles changed, and
// its next Hello is checked against the new ones. It implements adminapi.StreamCloser.
func (s *Server) ResetAgent(agentID string) {
	if s.sessions.close(agentID, errRolesChanged) {
		s.cfg.Metrics.StreamClosed("roles_changed")
		s.log.Info("agent stream closed", logkey.Agent, agentID, logkey.Reason,
			"roles changed")
	}
}
