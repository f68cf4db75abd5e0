// Package server assembles the controller: it loads the installation from the data
// directory, opens the store, and serves the gRPC services (enrollment, agents, admin,
// health, reflection) over TLS 1.3 with client certificates, plus /metrics, /healthz and
// /readyz over HTTP. Run serves until its context ends, then shuts down gracefully.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/wardsec/ward/controller/internal/adminapi"
	"github.com/wardsec/ward/controller/internal/agentapi"
	"github.com/wardsec/ward/controller/internal/agentinstall"
	"github.com/wardsec/ward/controller/internal/authz"
	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/enroll"
	"github.com/wardsec/ward/controller/internal/install"
	"github.com/wardsec/ward/controller/internal/inventory"
	"github.com/wardsec/ward/controller/internal/metrics"
	"github.com/wardsec/ward/controller/internal/presence"
	"github.com/wardsec/ward/controller/internal/remediation"
	"github.com/wardsec/ward/controller/internal/sitepush"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/version"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Server is an assembled controller. New opens its store and listeners; Run serves and,
// when it returns, has released them. Call Close instead when Run is never called.
type Server struct {
	cfg     Config
	log     *slog.Logger
	inst    install.Install
	metrics *metrics.Metrics

	db    *badger.Store // the store; closed last
	store store.Store   // db, instrumented

	grpc        *grpc.Server
	health      *health.Server
	agents      *agentapi.Server
	presence    *presence.Sweeper
	remediation remediationParts
	http        *http.Server

	lis        net.Listener // gRPC
	metricsLis net.Listener // HTTP

	evidence *evidenceParts // the evidence log: recorder, checkpointer, service

	serving   atomic.Bool // gRPC is accepting connections
	closeOnce sync.Once
}

// New loads the installation in cfg.DataDir, opens the store and the listeners, and
// assembles the services. Nothing is served until Run.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Log, metrics: metrics.New()}

	if err := s.open(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// open does the work of New; on error, Close releases what it opened.
func (s *Server) open() error {
	inst, err := install.LoadInstall(s.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.inst = inst
	authority, err := ca.Load(s.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	policy, err := ca.LoadPolicyKey(s.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	paths := install.PathsOf(s.cfg.DataDir)
	cert, err := loadCertFile(paths.ControllerCert, paths.ControllerKey, s.log)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}

	s.db, err = badger.Open(paths.DB, s.log)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.store = metrics.InstrumentStore(s.db, s.metrics)

	az := authz.New(s.store, inst.TrustDomain, s.log, s.metrics.AuthzDenied)
	if err := s.buildServices(authority, policy, az, cert); err != nil {
		return err
	}
	return s.listen()
}

// buildServices makes the gRPC server with its services, the presence sweeper and the
// HTTP server.
func (s *Server) buildServices(authority *ca.CA, policy *ca.PolicyKey, az *authz.Authorizer,
	cert *certFile) error {
	var err error
	if s.evidence, err = s.buildEvidence(authority, policy); err != nil {
		return err
	}
	enrollSrv, err := enroll.New(enroll.Config{
		Store: s.store, CA: authority, RootsDER: authority.RootsDER(),
		PolicyKeyDER: policy.PublicDER(), TrustDomain: s.inst.TrustDomain,
		CertTTL: s.cfg.CertTTL, Metrics: s.metrics, Log: s.log, Clock: s.cfg.Clock,
		Evidence: s.evidence.log,
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	hooks := &remediation.Observer{} // its engine is set by buildRemediation
	installer := &agentinstall.Installer{Recorder: s.evidence.log, Log: s.log}
	sites := &sitepush.Publisher{Store: s.db, Signer: policy, Log: s.log, Clock: s.cfg.Clock}
	incidents := &deviceIncidents{} // its engine is set below, by buildRemediation
	inv, invAPI, err := s.buildInventory(installer, sites, incidents)
	if err != nil {
		return err
	}
	s.agents, err = agentapi.New(agentapi.Config{
		Store: s.store, CA: authority, RootsDER: authority.RootsDER(),
		TrustDomain: s.inst.TrustDomain, HeartbeatInterval: s.cfg.HeartbeatInterval,
		CertTTL: s.cfg.CertTTL, MaxMessageBytes: s.cfg.MaxRecvMsgBytes,
		MessageRate: s.cfg.MessageRate, MessageBurst: s.cfg.MessageBurst,
		RevocationScan: s.cfg.RevocationScan, Commands: commandOwners{st: s.db},
		Observer: observers{hooks, inventory.Observer{Inventory: inv},
			s.evidence.witnesses, sites},
		Processor: inventory.Processor{Inventory: inv}, Metrics: s.metrics,
		Log: s.log, Clock: s.cfg.Clock,
		Evidence: s.evidence.log,
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.evidence.witnesses.SetSender(s.agents)
	sites.Sender = s.agents
	s.presence, err = presence.New(presence.Config{Store: s.store,
		Interval: s.cfg.HeartbeatInterval, Log: s.log, Clock: s.cfg.Clock})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if err := s.buildRemediation(policy, hooks, s.evidence.log); err != nil {
		return err
	}
	installer.Issuer, installer.Failures = s.remediation.engine, inv
	incidents.engine = s.remediation.engine
	s.remediation.engine.SetResultHandler(agentinstall.Owner, installer)
	admin := adminapi.New(adminapi.Config{Store: s.store, CA: authority, Log: s.log,
		Streams: s.agents, Clock: s.cfg.Clock, Recorder: s.evidence.log})

	s.grpc = grpc.NewServer(s.grpcOptions(authority, az, cert)...)
	s.health = health.NewServer()
	enrollSrv.Register(s.grpc)
	s.agents.Register(s.grpc)
	s.evidence.register(s.grpc)
	wardv1.RegisterAdminServiceServer(s.grpc, admin)
	s.remediation.api.Register(s.grpc)
	invAPI.Register(s.grpc)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)

	s.http = &http.Server{Handler: s.httpHandler(), ReadHeaderTimeout: 5 * time.Second}
	return nil
}

// grpcOptions returns the gRPC server's credentials, interceptors and limits.
func (s *Server) grpcOptions(authority *ca.CA, az *authz.Authorizer,
	cert *certFile) []grpc.ServerOption {
	tlsCfg := &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: cert.get,
		// Enrollment and health need no client certificate; authz refuses every other
		// call without one. A certificate that is given must verify against the root,
		// alone or (agents present their leaf only) through the intermediate.
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  authority.ClientCAs(),
		// Revoked agents and operators are refused at the handshake.
		VerifyConnection: az.VerifyConnection,
	}
	c := s.cfg
	return []grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(tlsCfg)),
		grpc.ChainUnaryInterceptor(az.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(az.StreamInterceptor()),
		agentapi.StreamTap(),
		grpc.MaxRecvMsgSize(c.MaxRecvMsgBytes),
		grpc.MaxConcurrentStreams(c.MaxConcurrentStreams),
		grpc.ReadBufferSize(max(c.ReadBufferSize, 0)),
		grpc.WriteBufferSize(max(c.WriteBufferSize, 0)),
		grpc.SharedWriteBuffer(true),
		// No HPACK dynamic table for what clients send: an agent sends its headers once,
		// for a stream that lasts days, and the table would keep them for as long.
		grpc.HeaderTableSize(0),
		grpc.InitialWindowSize(c.InitialWindowSize),
		grpc.InitialConnWindowSize(c.InitialConnWindowSize),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time: c.KeepaliveTime, Timeout: c.KeepaliveTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime: c.KeepaliveMinTime, PermitWithoutStream: true,
		}),
	}
}

// listen opens the gRPC and HTTP listeners.
func (s *Server) listen() error {
	var err error
	s.lis, err = net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	s.metricsLis, err = net.Listen("tcp", s.cfg.MetricsListen)
	if err != nil {
		return fmt.Errorf("server: listen for metrics: %w", err)
	}
	return nil
}

// Addr returns the gRPC listener's address.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// MetricsAddr returns the HTTP listener's address.
func (s *Server) MetricsAddr() net.Addr { return s.metricsLis.Addr() }

// Metrics returns the controller's metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Run serves until ctx ends or a part fails, then shuts down: health turns NOT_SERVING,
// open agent streams end with Unavailable, the gRPC server stops gracefully within
// ShutdownTimeout (then forcibly), the HTTP server stops and the store is closed. It
// returns nil after a shutdown asked for by ctx.
func (s *Server) Run(ctx context.Context) error {
	defer s.Close()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.serveGRPC() })
	g.Go(func() error { return s.serveHTTP() })
	g.Go(func() error { return s.agents.Run(gctx) })
	g.Go(func() error { return s.presence.Run(gctx) })
	g.Go(func() error { return s.evidence.checkpointer.Run(gctx) })
	g.Go(func() error { return s.remediation.run(gctx) })
	g.Go(func() error { return s.db.RunGC(gctx, s.cfg.StoreGCInterval) })
	g.Go(func() error {
		<-gctx.Done()
		s.shutdown()
		return nil
	})

	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.log.Info("controller serving", logkey.Addr, s.lis.Addr().String(),
		"metrics_addr", s.metricsLis.Addr().String(), "trust_domain", s.inst.TrustDomain,
		"controller", s.inst.Name, logkey.Version, version.Version)

	err := g.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("server: %w", err)
	}
	s.log.Info("controller stopped")
	return nil
}

func (s *Server) serveGRPC() error {
	s.serving.Store(true)
	defer s.serving.Store(false)

	err := s.grpc.Serve(s.lis)
	if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve grpc: %w", err)
	}
	return nil
}

func (s *Server) serveHTTP() error {
	err := s.http.Serve(s.metricsLis)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// shutdown stops the gRPC and HTTP servers. Agent streams are ended by agents.Run, which
// sees the same cancellation, so the graceful stop does not wait for them.
func (s *Server) shutdown() {
	s.log.Info("controller shutting down")
	s.health.Shutdown()

	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	timer := time.NewTimer(s.cfg.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		s.log.Warn("graceful stop timed out; closing remaining calls",
			logkey.Duration, s.cfg.ShutdownTimeout)
		s.grpc.Stop()
		<-done
	}

	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		s.http.Close()
	}
}

// Close releases the listeners and the store without a graceful stop. It is idempotent
// and what Run does on its way out.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.grpc != nil {
			s.grpc.Stop()
		}
		if s.http != nil {
			s.http.Close()
		}
		for _, l := range []net.Listener{s.lis, s.metricsLis} {
			if l != nil {
				l.Close()
			}
		}
		if s.db != nil {
			err = s.db.Close()
		}
	})
	return err
}
