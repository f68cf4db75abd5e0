package agentapi

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// gate is a Processor that holds every message until it is opened.
type gate struct {
	entered chan struct{} // receives once per held message
	open    chan struct{}
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 1024), open: make(chan struct{})}
}

func (g *gate) Process(context.Context, string, string, *wardv1.ConnectRequest) error {
	g.entered <- struct{}{}
	<-g.open
	return nil
}

// TestInboxHoldsWhileTheStoreIsBusy sends more messages than the inbox holds while the
// first batch is still being processed: the handler stops reading, nothing is lost, and
// once the store catches up every message is acknowledged, in fewer acks than messages.
func TestInboxHoldsWhileTheStoreIsBusy(t *testing.T) {
	g := newGate()
	e := newEnv(t, envOptions{cfg: func(c *Config) { c.Processor = g }})
	a := e.enrollAgent("a1", "clinic-a")
	s := a.connect(t)
	s.hello()

	const n = 3 * inboxSize
	s.send(heartbeat(1))
	<-g.entered // the committer holds message 1
	for seq := uint64(2); seq <= n; seq++ {
		s.send(heartbeat(seq))
	}
	close(g.open)

	acks := 0
	for last := uint64(0); last < n; {
		last = s.ack()
		acks++
	}
	if acks >= n {
		t.Errorf("%d acks for %d messages: nothing was batched", acks, n)
	}
	if got := len(messages(t, e.store, "clinic-a", "a1")); got != n {
		t.Fatalf("store holds %d messages, want %d", got, n)
	}
}

// TestRevokedWhileCommitting ends the stream of a revoked agent at once, with its status,
// even while its committer is still busy with a batch.
func TestRevokedWhileCommitting(t *testing.T) {
	g := newGate()
	defer close(g.open)
	e := newEnv(t, envOptions{cfg: func(c *Config) { c.Processor = g }})
	a := e.enrollAgent("a1", "clinic-a")
	s := a.connect(t)
	s.hello()
	s.send(heartbeat(1))
	<-g.entered

	start := time.Now()
	e.srv.CloseAgent("a1")
	s.wantCode(codes.PermissionDenied)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("revoked stream ended after %v", d)
	}
}
