package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// BareConfig configures a Bare server.
type BareConfig struct {
	// Listener accepts the connections; required. Run closes it.
	Listener net.Listener
	// TLS is the server's TLS configuration (Installation.ServerTLS); required.
	TLS *tls.Config
	// Options are extra gRPC server options, for example buffer sizes. None means gRPC's
	// defaults, the baseline the controller is compared with.
	Options []grpc.ServerOption
	// HeartbeatInterval is announced in Welcome; default 30s.
	HeartbeatInterval time.Duration
	// Log receives lifecycle events; required.
	Log *slog.Logger
}

// Bare is the baseline: a gRPC AgentService over the same mTLS as the controller that answers
// Hello with Welcome and acknowledges every message as soon as it arrives. It stores nothing
// and checks nothing beyond the presence of a verified client certificate.
type Bare struct {
	wardv1.UnimplementedAgentServiceServer

	cfg BareConfig
	srv *grpc.Server
}

// NewBare checks cfg and returns a server ready to Run.
func NewBare(cfg BareConfig) (*Bare, error) {
	switch {
	case cfg.Listener == nil:
		return nil, errors.New("bare server: no listener")
	case cfg.TLS == nil:
		return nil, errors.New("bare server: no tls config")
	case cfg.Log == nil:
		return nil, errors.New("bare server: no logger")
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 30 * time.Second
	}

	opts := append([]grpc.ServerOption{grpc.Creds(credentials.NewTLS(cfg.TLS))}, cfg.Options...)
	b := &Bare{cfg: cfg, srv: grpc.NewServer(opts...)}
	wardv1.RegisterAgentServiceServer(b.srv, b)
	return b, nil
}

// Run serves until ctx is cancelled, then stops at once (open streams are cut) and returns
// nil. It returns an error only when serving fails.
func (b *Bare) Run(ctx context.Context) error {
	b.cfg.Log.Info("bare server listening", logkey.Addr, b.cfg.Listener.Addr().String())

	errc := make(chan error, 1)
	go func() { errc <- b.srv.Serve(b.cfg.Listener) }()

	select {
	case <-ctx.Done():
		b.srv.Stop()
		<-errc
		b.cfg.Log.Info("bare server stopped")
		return nil
	case err := <-errc:
		return fmt.Errorf("bare server: %w", err)
	}
}

// Connect answers Hello with Welcome and acks every sequenced message immediately.
func (b *Bare) Connect(stream grpc.BidiStreamingServer[wardv1.ConnectRequest,
	wardv1.ConnectResponse]) error {
	if !hasClientCert(stream.Context()) {
		return status.Error(codes.PermissionDenied, "client certificate required")
	}

	ack := &wardv1.Ack{}
	resp := &wardv1.ConnectResponse{Body: &wardv1.ConnectResponse_Ack{Ack: ack}}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}

		if req.GetHello() != nil {
			err = stream.Send(b.welcome())
		} else {
			ack.UpToSeq = req.GetSeq()
			err = stream.Send(resp)
		}
		if err != nil {
			return err
		}
	}
}

// welcome returns the answer to a Hello.
func (b *Bare) welcome() *wardv1.ConnectResponse {
	return &wardv1.ConnectResponse{Body: &wardv1.ConnectResponse_Welcome{
		Welcome: &wardv1.Welcome{
			HeartbeatInterval: durationpb.New(b.cfg.HeartbeatInterval),
			ServerTime:        timestamppb.Now(),
			MaxMessageBytes:   1 << 20,
		},
	}}
}

// hasClientCert reports whether the peer of ctx presented a verified client certificate.
func hasClientCert(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	return ok && len(info.State.VerifiedChains) > 0
}
