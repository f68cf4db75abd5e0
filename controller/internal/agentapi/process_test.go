package agentapi

import (
	"context"
	"errors"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// processor records what it processed and refuses the message at failSeq once.
type processor struct {
	mu      sync.Mutex
	seqs    []uint64
	failSeq uint64
}

func (p *processor) Process(_ context.Context, _, _ string, m *wardv1.ConnectRequest) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.GetSeq() == p.failSeq {
		p.failSeq = 0
		return errors.New("evidence log unavailable")
	}
	p.seqs = append(p.seqs, m.GetSeq())
	return nil
}

// TestProcessorBeforeAck: a message is processed before its ack; when processing fails
// the stream ends with Unavailable and no ack, the message stays stored, and the next
// Welcome acknowledges it.
func TestProcessorBeforeAck(t *testing.T) {
	p := &processor{failSeq: 2}
	e := newEnv(t, envOptions{cfg: func(c *Config) { c.Processor = p }})
	a := e.enrollAgent("a1", "clinic-a")

	s := a.connect(t)
	s.hello()
	s.send(heartbeat(1))
	if got := s.ack(); got != 1 {
		t.Fatalf("ack = %d, want 1", got)
	}
	p.mu.Lock()
	processed := append([]uint64(nil), p.seqs...)
	p.mu.Unlock()
	if len(processed) != 1 || processed[0] != 1 {
		t.Fatalf("processed before the ack = %v, want [1]", processed)
	}

	s.send(heartbeat(2))
	if _, err := s.recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("after a failed Process: %v, want Unavailable and no ack", err)
	}
	got, err := e.store.GetAgent(context.Background(), "a1")
	if err != nil || got.AckedSeq != 2 {
		t.Fatalf("stored acked seq = %d, %v; want 2 (stored, not processed)", got.AckedSeq,
			err)
	}
	if w := a.connect(t).hello(); w.GetAckedSeq() != 2 {
		t.Errorf("next welcome acks %d, want 2", w.GetAckedSeq())
	}
}
