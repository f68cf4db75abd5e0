package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/wardsec/ward/agent/internal/testca"
	"github.com/wardsec/ward/pkg/identity"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// fakeController is an AgentService over real mTLS on loopback. It stores messages by
// (seq) like the real controller, acknowledges each one unless told to hold acks, and
// records what the agent presented.
type fakeController struct {
	wardv1.UnimplementedAgentServiceServer
	t        *testing.T
	ca       *testca.CA
	interval time.Duration
	certTTL  time.Duration

	srv *grpc.Server
	lis *trackingListener

	mu        sync.Mutex
	acked     uint64
	received  map[uint64]int // seq -> times received
	types     map[uint64]string
	hellos    []*wardv1.Hello
	serials   []string // client certificate serial of each Connect
	renewals  int
	failRenew error // returned by Renew when set
	holdAcks  bool
	invalid   uint64 // a seq refused as invalid every time it arrives
	refuse    error  // returned by Connect when set
	connects  int
	pushes    chan *wardv1.ConnectResponse
	firstSeqs []uint64 // first seq received on each stream

	// msgRate and msgBurst, when msgRate is set, are announced in the Welcome and enforced
	// like the controller does: one allowance per agent across its streams, and a stream
	// that exceeds it ends with ResourceExhausted (counted in rateRefusals).
	msgRate      float64
	msgBurst     int
	limiter      *rate.Limiter
	rateRefusals int
}

func newFakeController(t *testing.T, ca *testca.CA) *fakeController {
	t.Helper()
	f := &fakeController{t: t, ca: ca, interval: time.Hour, certTTL: time.Hour,
		received: map[uint64]int{}, types: map[uint64]string{},
		pushes: make(chan *wardv1.ConnectResponse, 16)}

	serverCert := ca.KeyPair(t, identity.Controller(ca.Domain, "c1"), time.Hour)
	creds := credentials.NewTLS(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
	})
	f.srv = grpc.NewServer(grpc.Creds(creds))
	wardv1.RegisterAgentServiceServer(f.srv, f)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.lis = &trackingListener{Listener: lis}
	go f.srv.Serve(f.lis)
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *fakeController) addr() string { return f.lis.Addr().String() }

func callerCert(ctx context.Context) *x509.Certificate {
	p, _ := peer.FromContext(ctx)
	info, _ := p.AuthInfo.(credentials.TLSInfo)
	return info.State.PeerCertificates[0]
}

func (f *fakeController) Connect(stream wardv1.AgentService_ConnectServer) error {
	cert := callerCert(stream.Context())
	f.mu.Lock()
	f.connects++
	f.serials = append(f.serials, cert.SerialNumber.Text(16))
	refuse := f.refuse
	f.mu.Unlock()
	if refuse != nil {
		return refuse
	}

	hello, err := stream.Recv()
	if err != nil {
		return err
	}
	if hello.GetHello() == nil || hello.GetSeq() != 0 {
		return status.Error(codes.InvalidArgument, "first message is not a hello")
	}
	id, _ := identity.FromCertificate(cert)

	f.mu.Lock()
	f.hellos = append(f.hellos, hello.GetHello())
	acked := f.acked
	f.mu.Unlock()
	err = stream.Send(&wardv1.ConnectResponse{Body: &wardv1.ConnectResponse_Welcome{
		Welcome: &wardv1.Welcome{AgentId: id.Name, AckedSeq: acked,
			HeartbeatInterval: durationpb.New(f.interval), MessageRate: f.msgRate,
			MessageBurst: uint32(f.msgBurst)}}})
	if err != nil {
		return err
	}

	errc := make(chan error, 2)
	go func() {
		for {
			select {
			case p := <-f.pushes:
				if err := stream.Send(p); err != nil {
					errc <- err
					return
				}
			case <-stream.Context().Done():
				return
			}
		}
	}()
	go func() { errc <- f.serve(stream) }()
	return <-errc
}

func (f *fakeController) serve(stream wardv1.AgentService_ConnectServer) error {
	first := true
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if m.GetSeq() == 0 || m.GetHello() != nil {
			return status.Error(codes.InvalidArgument, "bad sequenced message")
		}

		f.mu.Lock()
		if f.msgRate > 0 {
			if f.limiter == nil {
				f.limiter = rate.NewLimiter(rate.Limit(f.msgRate), f.msgBurst)
			}
			if !f.limiter.Allow() {
				f.rateRefusals++
				f.mu.Unlock()
				return status.Error(codes.ResourceExhausted, "message rate exceeded")
			}
		}
		if m.GetSeq() == f.invalid {
			f.received[m.GetSeq()]++
			f.mu.Unlock()
			return status.Error(codes.InvalidArgument, "drift report: bad field")
		}
		if first {
			f.firstSeqs = append(f.firstSeqs, m.GetSeq())
			first = false
		}
		f.received[m.GetSeq()]++
		f.types[m.GetSeq()] = messageType(m)
		if m.GetSeq() > f.acked {
			f.acked = m.GetSeq()
		}
		acked, hold := f.acked, f.holdAcks
		f.mu.Unlock()
		if hold {
			continue
		}
		err = stream.Send(&wardv1.ConnectResponse{Body: &wardv1.ConnectResponse_Ack{
			Ack: &wardv1.Ack{UpToSeq: acked}}})
		if err != nil {
			return err
		}
	}
}

func messageType(m *wardv1.ConnectRequest) string {
	switch m.GetBody().(type) {
	case *wardv1.ConnectRequest_Heartbeat:
		return "heartbeat"
	case *wardv1.ConnectRequest_DriftReport:
		return "drift_report"
	}
	return "other"
}

func (f *fakeController) Renew(ctx context.Context,
	req *wardv1.RenewRequest) (*wardv1.RenewResponse, error) {
	id, err := identity.FromCertificate(callerCert(ctx))
	if err != nil {
		return nil, status.Error(codes.PermissionDenied, "no identity")
	}
	f.mu.Lock()
	f.renewals++
	ttl, fail := f.certTTL, f.failRenew
	f.mu.Unlock()
	if fail != nil {
		return nil, fail
	}

	der, err := f.ca.SignCSR(req.GetCsrDer(), id, ttl)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &wardv1.RenewResponse{CertificateChain: [][]byte{der},
		CaCertificates: [][]byte{f.ca.Cert.Raw}}, nil
}

// snapshot returns a copy of the counters under the lock.
func (f *fakeController) snapshot() (connects, renewals int, received map[uint64]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	received = make(map[uint64]int, len(f.received))
	for k, v := range f.received {
		received[k] = v
	}
	return f.connects, f.renewals, received
}

func (f *fakeController) set(fn func(f *fakeController)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// trackingListener remembers accepted connections so a test can cut them all, forcing the
// agent through a new TLS handshake.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
	n     int
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.n++
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) dropAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

func (l *trackingListener) accepted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}
