package agentapi

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// recorder is an Observer that records calls and, on Connected, pushes a command.
type recorder struct {
	srv *Server

	mu        sync.Mutex
	connected []string
	roles     [][]string // the roles of each Connected
	committed []uint64
	sendErr   error
}

func (r *recorder) Connected(ctx context.Context, tenant, agentID string, roles []string,
	hello *wardv1.Hello) {
	if hello == nil {
		panic("Connected without the hello")
	}
	err := r.srv.Send(agentID, &wardv1.ConnectResponse{Body: &wardv1.ConnectResponse_Command{
		Command: &wardv1.SignedPayload{PayloadType: "ward.v1.CommandSpec"}}})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.connected = append(r.connected, tenant+"/"+agentID)
	r.roles = append(r.roles, roles)
	r.sendErr = err
}

func (r *recorder) Committed(ctx context.Context, tenant, agentID string,
	m *wardv1.ConnectRequest) {
	if ctx.Err() != nil {
		panic("observer context already done")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.committed = append(r.committed, m.GetSeq())
}

func (r *recorder) state() ([]string, []uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.connected...), append([]uint64(nil), r.committed...),
		r.sendErr
}

func TestObserverAndSend(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, envOptions{cfg: func(c *Config) { c.Observer = rec }})
	rec.srv = e.srv
	a := e.enrollAgent("a1", "clinic-a")

	if err := e.srv.Send("a1", &wardv1.ConnectResponse{}); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Send without a stream = %v, want ErrNotConnected", err)
	}

	s := a.connect(t)
	s.hello() // the Welcome comes first, whatever was pushed

	// The command pushed from Connected arrives after the Welcome.
	resp, err := s.recv()
	if err != nil || resp.GetCommand().GetPayloadType() != "ward.v1.CommandSpec" {
		t.Fatalf("after the welcome: %v, %v; want the pushed command", resp, err)
	}

	for _, seq := range []uint64{1, 2, 2, 3} { // 2 twice: a duplicate
		s.send(heartbeat(seq))
		s.ack()
	}
	// Committed runs after the ack is sent: wait for the last one.
	connected, committed, sendErr := rec.state()
	for deadline := time.Now().Add(5 * time.Second); len(committed) < 3 &&
		time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		connected, committed, sendErr = rec.state()
	}
	if sendErr != nil {
		t.Fatalf("Send from Connected: %v", sendErr)
	}
	if len(connected) != 1 || connected[0] != "clinic-a/a1" {
		t.Fatalf("Connected calls = %v", connected)
	}
	if len(committed) != 3 || committed[0] != 1 || committed[1] != 2 || committed[2] != 3 {
		t.Fatalf("Committed calls = %v, want [1 2 3] (no duplicate)", committed)
	}

	// Pushes at any time, from any goroutine, interleave with acks safely.
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.srv.Send("a1", &wardv1.ConnectResponse{
				Body: &wardv1.ConnectResponse_RenewCertificate{
					RenewCertificate: &wardv1.RenewCertificate{Reason: "test"}}}); err != nil {
				t.Error(err)
			}
		}()
	}
	s.send(heartbeat(4))
	wg.Wait()
	renewals, acks := 0, 0
	for renewals < 10 || acks < 1 {
		resp, err := s.recv()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case resp.GetRenewCertificate() != nil:
			renewals++
		case resp.GetAck() != nil:
			acks++
		}
	}

	// Once the stream is gone, Send says so.
	s.cancel()
	deadline := time.Now().Add(5 * time.Second)
	for !errors.Is(e.srv.Send("a1", &wardv1.ConnectResponse{}), ErrNotConnected) {
		if time.Now().After(deadline) {
			t.Fatal("Send still accepts 5 s after the stream ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPushQueueBounded(t *testing.T) {
	r := newRegistry()
	ss := &session{agentID: "a1"} // not ready: nothing is written
	for i := range MaxQueuedPushes {
		if err := ss.push(&wardv1.ConnectResponse{}, r); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	if err := ss.push(&wardv1.ConnectResponse{}, r); !errors.Is(err, ErrPushQueueFull) {
		t.Fatalf("push over the bound = %v, want ErrPushQueueFull", err)
	}
	ss.end()
	if err := ss.push(&wardv1.ConnectResponse{}, r); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("push after end = %v, want ErrNotConnected", err)
	}
}

// sentStream is a stream whose Send records messages; nothing else is used.
type sentStream struct {
	wardv1.AgentService_ConnectServer
	mu   sync.Mutex
	sent []*wardv1.ConnectResponse
}

func (s *sentStream) Send(m *wardv1.ConnectResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, m)
	return nil
}

func TestWrittenPushesAreReleased(t *testing.T) {
	r := newRegistry()
	st := &sentStream{}
	ss := &session{agentID: "a1", stream: st}
	ss.markReady(r)
	for range 3 {
		if err := ss.push(&wardv1.ConnectResponse{}, r); err != nil {
			t.Fatal(err)
		}
	}
	r.workers.Wait() // the writer ends when the queue is empty

	st.mu.Lock()
	n := len(st.sent)
	st.mu.Unlock()
	ss.pushMu.Lock()
	defer ss.pushMu.Unlock()
	if n != 3 || ss.writing {
		t.Fatalf("sent %d, writing %v; want 3 sent and the writer gone", n, ss.writing)
	}
	// An idle session keeps nothing of what it sent (a baseline can be large).
	if ss.pushes != nil {
		t.Fatalf("queue keeps a backing array of %d after writing everything", cap(ss.pushes))
	}
}
