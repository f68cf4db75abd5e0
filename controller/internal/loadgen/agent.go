package loadgen

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Identity is one simulated agent: the id its certificate names and the certificate chain
// with its private key.
type Identity struct {
	ID   string
	Cert tls.Certificate
}

// clientBufferSize keeps the load generator's own connections cheap: it runs up to 10,000
// of them in one process.
const clientBufferSize = 8 << 10

// Dialer opens simulated agents' connections to one server. Each connection gets its own TLS
// handshake with the agent's certificate, as real agents do. Safe for concurrent use.
type Dialer struct {
	addr     string
	base     *tls.Config  // shared; cloned per agent only to set the certificate
	baseline atomic.Value // string: baseline version that Hellos report, once learnt
}

// NewDialer returns a Dialer for the server at addr (host:port) whose certificate chains to
// roots.
func NewDialer(addr string, roots *x509.CertPool) *Dialer {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return &Dialer{addr: addr, base: &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    roots,
		ServerName: host,
		NextProtos: []string{"h2"},
	}}
}

// SetBaseline makes every later Hello report baseline version v, as agents that applied
// it do. Safe for concurrent use.
func (d *Dialer) SetBaseline(v string) { d.baseline.Store(v) }

// Baseline returns the version Hellos report; empty until SetBaseline.
func (d *Dialer) Baseline() string {
	v, _ := d.baseline.Load().(string)
	return v
}

// Addr returns the server address.
func (d *Dialer) Addr() string { return d.addr }

// tlsConfig returns the client configuration presenting cert; nil cert presents none.
// Like ward-agent, it presents the leaf alone: both servers trust the intermediate.
func (d *Dialer) tlsConfig(cert *tls.Certificate) *tls.Config {
	cfg := d.base.Clone()
	if cert != nil {
		leaf := *cert
		leaf.Certificate = cert.Certificate[:min(1, len(cert.Certificate))]
		cfg.Certificates = []tls.Certificate{leaf}
	}
	return cfg
}

// dial returns a client connection (not yet connected) that presents cert.
func (d *Dialer) dial(cert *tls.Certificate) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient("passthrough:///"+d.addr,
		grpc.WithTransportCredentials(credentials.NewTLS(d.tlsConfig(cert))),
		grpc.WithReadBufferSize(clientBufferSize),
		grpc.WithWriteBufferSize(clientBufferSize),
		grpc.WithDisableServiceConfig(),
		grpc.WithDisableRetry(),
	)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", d.addr, err)
	}
	return conn, nil
}

// Session is one agent's open Connect stream, after Hello, Welcome, one heartbeat and its ack.
// Send-side methods (Heartbeat, pumpHeartbeats) must not run concurrently with each other; Close is
// safe at any time and idempotent.
type Session struct {
	id       Identity
	conn     *grpc.ClientConn
	stream   grpc.BidiStreamingClient[wardv1.ConnectRequest, wardv1.ConnectResponse]
	cancel   context.CancelFunc
	started  time.Time
	nextSeq  uint64
	interval time.Duration // heartbeat interval from Welcome
	baseline string        // version the Hello reports
	offered  string        // version of a baseline received during setup

	closeOnce sync.Once
}

// Connect opens id's session: dial, Connect, Hello, Welcome, then one heartbeat whose ack it
// waits for. Cancelling ctx aborts the setup; the session itself lives until Close.
func (d *Dialer) Connect(ctx context.Context, id Identity) (*Session, error) {
	conn, err := d.dial(&id.Cert)
	if err != nil {
		return nil, err
	}
	streamCtx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	defer stop()

	s := &Session{id: id, conn: conn, cancel: cancel, started: time.Now(),
		baseline: d.Baseline()}
	if err := s.open(streamCtx); err != nil {
		s.Close()
		return nil, fmt.Errorf("connect agent %s: %w", id.ID, err)
	}
	return s, nil
}

// open runs the session's setup exchange.
func (s *Session) open(ctx context.Context) error {
	stream, err := wardv1.NewAgentServiceClient(s.conn).Connect(ctx)
	if err != nil {
		return err
	}
	s.stream = stream

	if err := stream.Send(s.hello()); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("receive welcome: %w", err)
	}
	w := resp.GetWelcome()
	if w == nil {
		return errors.New("first answer is not a welcome")
	}
	s.nextSeq = w.GetAckedSeq() + 1
	s.interval = w.GetHeartbeatInterval().AsDuration()

	seq := s.nextSeq
	if err := s.Heartbeat(); err != nil {
		return err
	}
	return s.awaitAck(seq)
}

// awaitAck receives until an ack covers seq.
func (s *Session) awaitAck(seq uint64) error {
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			return fmt.Errorf("await ack %d: %w", seq, err)
		}
		if a := resp.GetAck(); a != nil && a.GetUpToSeq() >= seq {
			return nil
		}
		if v, ok := baselineVersion(resp); ok {
			s.offered = v
		}
	}
}

// LearnBaseline connects as id and waits up to wait for the baseline the server offers an
// agent that reports none, then makes d's later Hellos report its version, so that the
// agents measured are in the steady state of agents that applied it. It returns the
// version, empty when the server offered none in time (the bare server never does).
func (d *Dialer) LearnBaseline(ctx context.Context, id Identity,
	wait time.Duration) (string, error) {
	s, err := d.Connect(ctx, id)
	if err != nil {
		return "", err
	}
	defer s.Close()

	timer := time.AfterFunc(wait, s.cancel)
	defer timer.Stop()
	v := s.offered
	for v == "" {
		resp, err := s.stream.Recv()
		if err != nil {
			return "", nil // no offer in time
		}
		v, _ = baselineVersion(resp)
	}
	d.SetBaseline(v)
	return v, nil
}

// baselineVersion returns the version of the baseline update resp carries, if it is one.
// The signature is not checked: the load generator applies nothing.
func baselineVersion(resp *wardv1.ConnectResponse) (string, bool) {
	b := resp.GetBaselineUpdate()
	if b == nil {
		return "", false
	}
	var spec wardv1.BaselineSpec
	if err := proto.Unmarshal(b.GetPayload(), &spec); err != nil {
		return "", false
	}
	return spec.GetVersion(), spec.GetVersion() != ""
}

// Heartbeat sends the next heartbeat without waiting for its ack.
func (s *Session) Heartbeat() error {
	req := s.heartbeat(s.nextSeq)
	if err := s.stream.Send(req); err != nil {
		return fmt.Errorf("send heartbeat %d: %w", req.Seq, err)
	}
	s.nextSeq++
	return nil
}

// hello is the session's first message.
func (s *Session) hello() *wardv1.ConnectRequest {
	return &wardv1.ConnectRequest{
		CreatedAt: timestamppb.Now(),
		Body: &wardv1.ConnectRequest_Hello{Hello: &wardv1.Hello{
			Host: &wardv1.HostFacts{
				Hostname:     "loadgen-" + s.id.ID,
				Os:           "debian",
				OsVersion:    "12",
				Arch:         runtime.GOARCH,
				AgentVersion: "loadgen",
				Roles:        []string{"host"},
			},
			Spool:           &wardv1.SpoolState{},
			BaselineVersion: s.baseline,
		}},
	}
}

// heartbeat returns a heartbeat with sequence number seq.
func (s *Session) heartbeat(seq uint64) *wardv1.ConnectRequest {
	return &wardv1.ConnectRequest{
		Seq:       seq,
		CreatedAt: timestamppb.Now(),
		Body: &wardv1.ConnectRequest_Heartbeat{Heartbeat: &wardv1.Heartbeat{
			UptimeSeconds: uint64(time.Since(s.started) / time.Second),
			Spool:         &wardv1.SpoolState{NextSeq: seq + 1},
		}},
	}
}

// Close ends the stream and the connection.
func (s *Session) Close() {
	s.closeOnce.Do(func() {
		s.cancel()
		s.conn.Close()
	})
}
