package adminapitest

import (
	"net"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/wardsec/ward/controller/internal/authz"
	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store/badger"
	"github.com/wardsec/ward/pkg/scrub"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Evidence is the installation's EvidenceService with its recorder, checkpointer and
// archiver, served over mTLS with the real authz interceptors on a loopback listener of
// its own. Its fields are read-only for tests.
type Evidence struct {
	Addr         string // host:port on 127.0.0.1
	Key          *evidence.Key
	Log          *evidence.Log
	Checkpointer *evidence.Checkpointer
	Archiver     *evidence.Archiver
	ArchiveDir   string // DATA/evidence-archives

	mu  sync.Mutex
	now time.Time // the archiver's clock; zero: time.Now
}

// SetNow sets the archiver's clock (retention cutoffs, archive times); the zero time
// puts it back to the wall clock. Record times stay the wall clock's.
func (x *Evidence) SetNow(t time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.now = t
}

func (x *Evidence) clock() time.Time {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.now.IsZero() {
		return time.Now()
	}
	return x.now
}

// ServeEvidence serves the EvidenceService on the Env's store until the test ends, with
// archives kept in DATA/evidence-archives and the minimum retention.
func (e *Env) ServeEvidence() *Evidence {
	e.T.Helper()
	log := Log(e.T)
	st := e.Store.(*badger.Store)
	key, err := evidence.LoadOrCreateKey(e.Dir, e.CA)
	if err != nil {
		e.T.Fatal(err)
	}
	x := &Evidence{Key: key, ArchiveDir: filepath.Join(e.Dir, "evidence-archives")}
	x.Checkpointer = evidence.NewCheckpointer(evidence.CheckpointerConfig{Store: st,
		Tenants: st, Key: key, Log: log})
	x.Log = evidence.NewLog(evidence.Config{Store: st, Scrubber: scrub.New([]byte("salt")),
		Log: log, Appended: x.Checkpointer.Appended})
	x.Checkpointer.SetRecorder(x.Log)
	exporter := &evidence.Exporter{Store: st, Key: key, Checkpointer: x.Checkpointer}
	x.Archiver, err = evidence.NewArchiver(evidence.ArchiverConfig{Store: st, Retention: st,
		Exporter: exporter, Recorder: x.Log, Roots: e.CA.Roots(), Dir: x.ArchiveDir,
		Clock: x.clock, Log: log})
	if err != nil {
		e.T.Fatal(err)
	}
	svc := evidence.NewService(evidence.ServiceConfig{Store: st, Tenants: st, Log: log,
		Exporter: exporter, Archiver: x.Archiver})

	az := authz.New(st, TrustDomain, log, func(method, reason string) {
		e.Denied.Add(method + " " + reason)
	})
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(e.serverTLS(az))),
		grpc.ChainUnaryInterceptor(az.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(az.StreamInterceptor()))
	wardv1.RegisterEvidenceServiceServer(srv, svc)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.T.Fatal(err)
	}
	x.Addr = lis.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(lis)
	}()
	e.T.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return x
}
