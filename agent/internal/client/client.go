// Package client keeps the agent's one session with the controller: a mutually
// authenticated AgentService.Connect stream that sends Hello, then everything in the spool
// in order, then new messages as they are appended; it applies the controller's
// acknowledgements to the spool, reconnects with capped, jittered exponential backoff,
// sends heartbeats, and renews the agent's certificate at two thirds of its life without
// dropping the stream.
package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/agent/internal/spool"
	"github.com/wardsec/ward/agent/internal/state"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Defaults for Config.
const (
	DefaultHeartbeatInterval = 30 * time.Second
	DefaultMinBackoff        = time.Second
	DefaultMaxBackoff        = 60 * time.Second
	DefaultStableAfter       = time.Minute
	DefaultCallTimeout       = 30 * time.Second

	// A connection that has been silent this long is pinged, and dropped when the ping is
	// not answered in keepaliveTimeout: a half-open connection (a NAT that forgot it) is
	// noticed in under two minutes instead of TCP's quarter of an hour. The controller
	// accepts pings every 15 s or more.
	keepaliveTime    = 60 * time.Second
	keepaliveTimeout = 20 * time.Second
)

// ErrCertExpired is returned by Run when the agent's certificate has expired: the agent
// cannot authenticate any more and only a new enrollment helps.
var ErrCertExpired = errors.New("certificate expired")

// Config configures New. Fields without a default are required.
type Config struct {
	// Addr is the controller's host:port; the host is also the name its certificate must
	// carry.
	Addr string
	// Info is the agent's enrollment (agent.json).
	Info state.Info
	// Dir receives renewed key pairs and trust bundles.
	Dir state.Dir
	// Cert is the certificate and key to start with.
	Cert tls.Certificate
	// CertObtained is when Cert was obtained (cert.pem's modification time); zero means
	// its NotBefore. Renewal is due at two thirds of the life that began then.
	CertObtained time.Time
	// Roots is the trust bundle for the controller's certificate.
	Roots *x509.CertPool
	// PolicyKey is the pinned key that signs commands, baselines and checkpoints.
	PolicyKey *ecdsa.PublicKey
	// Spool holds unacknowledged messages; the caller opens and closes it.
	Spool *spool.Spool
	// Facts returns the host facts for each Hello.
	Facts func() *wardv1.HostFacts
	// Log receives lifecycle events, logged on change.
	Log *slog.Logger
	// Commands receives each command the controller pushes, still signed: the receiver
	// verifies it (commands.Executor) and reports the result through Enqueue. It is called
	// from the stream's receive loop and must not block. Nil: commands are verified,
	// logged and not run.
	Commands func(p *wardv1.SignedPayload)
	// Baselines receives each baseline update whose signature verifies with PolicyKey and
	// which names this agent's tenant. It is called from the stream's receive loop and
	// must return quickly. Nil: updates are verified, logged and not applied.
	Baselines func(spec *wardv1.BaselineSpec)
	// BaselineVersion returns the version of the baseline the agent applies, for each
	// Hello; nil or "" means none.
	BaselineVersion func() string
	// Checkpoints receives each evidence checkpoint whose signature verifies with
	// PolicyKey (a collector witnesses it: package witness). It is called from the
	// stream's receive loop and must return quickly. Nil: checkpoints are verified and
	// logged.
	Checkpoints func(cp *wardv1.Checkpoint)
	// SiteConfigs receives each site configuration whose signature verifies with
	// PolicyKey and whose tenant is this agent's (a collector writes and scans with it).
	// It is called from the stream's receive loop and must return quickly. Nil: site
	// configurations are verified and logged.
	SiteConfigs func(u *wardv1.SiteConfigUpdate)
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	// HeartbeatInterval applies until a Welcome sets another; zero means 30 s.
	HeartbeatInterval time.Duration
	// MinBackoff and MaxBackoff bound the reconnect delay; zero means 1 s and 60 s.
	MinBackoff, MaxBackoff time.Duration
	// StableAfter is how long a connection must stay up for the backoff to start over;
	// zero means one minute.
	StableAfter time.Duration
	// CallTimeout bounds the wait for a Welcome and each Renew call; zero means 30 s.
	CallTimeout time.Duration
}

// Client is the agent's connection to the controller. Create it with New, run it with Run
// (once), and feed it messages with Enqueue, which is safe for concurrent use.
type Client struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	creds *creds
	start time.Time

	interval       atomic.Int64                 // heartbeat interval, nanoseconds
	pace           atomic.Pointer[rate.Limiter] // paces sends below the announced rate; nil: none
	intervalChange chan struct{}                // capacity 1: the heartbeat loop re-arms its timer
	renewNow       chan renewal                 // capacity 1: a renewal asked for at once
	renewMu        sync.Mutex                   // serializes requests into renewNow
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.Addr == "":
		return nil, errors.New("client: no controller address")
	case cfg.Info.AgentID == "":
		return nil, errors.New("client: no agent identity")
	case cfg.Dir == "":
		return nil, errors.New("client: no state directory")
	case len(cfg.Cert.Certificate) == 0:
		return nil, errors.New("client: no certificate")
	case cfg.Roots == nil:
		return nil, errors.New("client: no trust bundle")
	case cfg.PolicyKey == nil:
		return nil, errors.New("client: no policy key")
	case cfg.Spool == nil:
		return nil, errors.New("client: no spool")
	case cfg.Facts == nil:
		return nil, errors.New("client: no host facts")
	case cfg.Log == nil:
		return nil, errors.New("client: no logger")
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("client: controller address %q: want host:port", cfg.Addr)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.HeartbeatInterval = orDefault(cfg.HeartbeatInterval, DefaultHeartbeatInterval)
	cfg.MinBackoff = orDefault(cfg.MinBackoff, DefaultMinBackoff)
	cfg.MaxBackoff = orDefault(cfg.MaxBackoff, DefaultMaxBackoff)
	cfg.StableAfter = orDefault(cfg.StableAfter, DefaultStableAfter)
	cfg.CallTimeout = orDefault(cfg.CallTimeout, DefaultCallTimeout)

	cr, err := newCreds(cfg.Cert, cfg.CertObtained, cfg.Roots)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Client{
		cfg:            cfg,
		log:            cfg.Log,
		now:            cfg.Now,
		creds:          cr,
		start:          cfg.Now(),
		intervalChange: make(chan struct{}, 1),
		renewNow:       make(chan renewal, 1),
	}
	c.interval.Store(int64(cfg.HeartbeatInterval))
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Run connects and keeps the session up until ctx is cancelled, then returns nil. It
// returns an error wrapping ErrCertExpired when the certificate has expired (at start, or
// because renewal failed until expiry), and other errors only for a broken local spool.
func (c *Client) Run(ctx context.Context) error {
	if err := c.checkExpiry(); err != nil {
		return err
	}

	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	api := wardv1.NewAgentServiceClient(conn)

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.connectLoop(ctx, api, conn.ResetConnectBackoff) })
	g.Go(func() error { return c.heartbeatLoop(ctx) })
	g.Go(func() error { return c.renewLoop(ctx, api) })
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// checkExpiry returns the error that stops an agent whose certificate has expired.
func (c *Client) checkExpiry() error {
	if !c.creds.expired(c.now()) {
		return nil
	}
	return fmt.Errorf("%w at %s; this agent must be enrolled again: ask your operator for "+
		"a new token (wardctl token create --tenant %s) and run ward-agent enroll --force",
		ErrCertExpired, c.creds.leaf().NotAfter.UTC().Format(time.RFC3339), c.cfg.Info.Tenant)
}

// dial creates the ClientConn. The stream's loop paces reconnecting (connectLoop): it
// resets the connection's backoff before each attempt, so that every attempt dials once.
// The connection's own backoff is therefore MaxBackoff flat: it redials by itself only if
// nothing asks sooner, and never stacks a delay of its own on top of the loop's.
func (c *Client) dial() (*grpc.ClientConn, error) {
	host, _, _ := net.SplitHostPort(c.cfg.Addr)
	tlsCfg := c.creds.tlsConfig(host, c.cfg.Info.TrustDomain)
	conn, err := grpc.NewClient(c.cfg.Addr,
		grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: grpcbackoff.Config{
				BaseDelay:  c.cfg.MaxBackoff,
				Multiplier: 1,
				MaxDelay:   c.cfg.MaxBackoff,
			},
			MinConnectTimeout: c.cfg.CallTimeout,
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: keepaliveTime, Timeout: keepaliveTimeout,
		}))
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return conn, nil
}

// Enqueue spools a sequenced message for the controller and returns its seq. req's body
// must be set; Enqueue sets created_at if it is missing and ignores req.Seq. The message is
// durable when Enqueue returns, and is sent as soon as a session is up. It returns
// spool.ErrFull when the spool has no room; the caller should retry later.
func (c *Client) Enqueue(req *wardv1.ConnectRequest) (uint64, error) {
	kind, ok := kindOf(req)
	if !ok {
		return 0, fmt.Errorf("enqueue: unsupported message body %T", req.GetBody())
	}
	req = proto.CloneOf(req)
	req.Seq = 0
	if req.CreatedAt == nil {
		req.CreatedAt = timestamppb.New(c.now())
	}

	payload, err := proto.Marshal(req)
	if err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	seq, err := c.cfg.Spool.Append(kind, payload)
	if err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	return seq, nil
}

// kindOf maps a request body to its spool kind. Hello is never spooled.
func kindOf(req *wardv1.ConnectRequest) (spool.Kind, bool) {
	switch req.GetBody().(type) {
	case *wardv1.ConnectRequest_Heartbeat:
		return spool.KindHeartbeat, true
	case *wardv1.ConnectRequest_DriftReport:
		return spool.KindDriftReport, true
	case *wardv1.ConnectRequest_DiscoveryReport:
		return spool.KindDiscoveryReport, true
	case *wardv1.ConnectRequest_CommandResult:
		return spool.KindCommandResult, true
	case *wardv1.ConnectRequest_WitnessSignature:
		return spool.KindWitnessSignature, true
	}
	return 0, false
}

// spoolState converts the spool's counters to their wire form.
func spoolState(st spool.State) *wardv1.SpoolState {
	return &wardv1.SpoolState{
		OldestSeq:         st.OldestSeq,
		NextSeq:           st.NextSeq,
		Messages:          st.Messages,
		Bytes:             st.Bytes,
		DroppedHeartbeats: st.DroppedHeartbeats,
	}
}
