package agentapi

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wardsec/ward/controller/internal/store"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func messages(t *testing.T, st store.Store, tenant, agentID string) []store.Message {
	t.Helper()
	msgs, err := st.ListMessages(context.Background(), tenant, agentID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func getAgent(t *testing.T, st store.Store, id string) store.Agent {
	t.Helper()
	a, err := st.GetAgent(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// wantCode receives until the stream ends and checks its status code.
func (s *stream) wantCode(code codes.Code) error {
	s.t.Helper()
	for {
		_, err := s.recv()
		if err == nil {
			continue
		}
		if got := status.Code(err); got != code {
			s.t.Fatalf("stream ended with %v, want %v", err, code)
		}
		return err
	}
}

func TestHelloWelcome(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *Config) { c.HeartbeatInterval = 7 * time.Second }})
	a := e.enrollAgent("a1", "clinic-a")

	s := a.connect(t)
	w := s.hello()

	if w.GetAgentId() != "a1" || w.GetHeartbeatInterval().AsDuration() != 7*time.Second ||
		w.GetAckedSeq() != 0 || w.GetMaxMessageBytes() != DefaultMaxMessageBytes ||
		w.GetMessageRate() != float64(DefaultMessageRate) ||
		w.GetMessageBurst() != DefaultMessageBurst {
		t.Fatalf("welcome = %v", w)
	}
	if d := time.Since(w.GetServerTime().AsTime()); d < 0 || d > time.Minute {
		t.Fatalf("welcome server time off by %v", d)
	}
	got := getAgent(t, e.store, "a1")
	if !got.Online || got.LastSeen.IsZero() || got.Host.Hostname != "srv-01" {
		t.Fatalf("agent after hello = %+v", got)
	}
	if !e.srv.Connected("a1") {
		t.Fatal("Connected(a1) = false with an open stream")
	}
}

func TestHeartbeatsAckedAfterCommitAndStoredOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.enrollAgent("a1", "clinic-a")
	s := a.connect(t)
	s.hello()

	for seq := uint64(1); seq <= 3; seq++ {
		s.send(heartbeat(seq))
		if got := s.ack(); got != seq {
			t.Fatalf("ack after seq %d = %d", seq, got)
		}
		// The ack came after the commit: the message is in the store now.
		if n := len(messages(t, e.store, "clinic-a", "a1")); n != int(seq) {
			t.Fatalf("after ack %d the store holds %d messages", seq, n)
		}
	}

	// Duplicates (a resend after a lost ack) are acked again and change nothing.
	s.send(heartbeat(2))
	if got := s.ack(); got != 3 {
		t.Fatalf("ack of a duplicate = %d, want 3", got)
	}
	msgs := messages(t, e.store, "clinic-a", "a1")
	if len(msgs) != 3 {
		t.Fatalf("store holds %d messages after a duplicate, want 3", len(msgs))
	}
	var stored wardv1.ConnectRequest
	if err := proto.Unmarshal(msgs[1].Body, &stored); err != nil {
		t.Fatal(err)
	}
	if msgs[1].Type != "heartbeat" || stored.GetHeartbeat().GetUptimeSeconds() != 2 {
		t.Fatalf("stored message = %+v", msgs[1])
	}

	// A new connection learns the high-water mark.
	s.cancel()
	s2 := a.connect(t)
	if w := s2.hello(); w.GetAckedSeq() != 3 {
		t.Fatalf("welcome acked_seq = %d, want 3", w.GetAckedSeq())
	}
}

// TestPipelinedMessages sends messages without waiting for acks, as the agent's spool
// does: the controller may commit them in batches, but every ack covers only stored
// messages, acks never go back, duplicates inside a batch change nothing, and a bad
// message ends the stream only after what came before it is stored and acknowledged.
func TestPipelinedMessages(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.enrollAgent("a1", "clinic-a")
	s := a.connect(t)
	s.hello()

	const n = 40
	for seq := uint64(1); seq <= n; seq++ {
		s.send(heartbeat(seq))
		if seq == 10 {
			s.send(heartbeat(7)) // a resend in the middle of the batch
		}
	}
	var last uint64
	for last < n {
		got := s.ack()
		if got < last {
			t.Fatalf("ack went back from %d to %d", last, got)
		}
		if stored := len(messages(t, e.store, "clinic-a", "a1")); stored < int(got) {
			t.Fatalf("ack %d with only %d messages stored", got, stored)
		}
		last = got
	}
	msgs := messages(t, e.store, "clinic-a", "a1")
	if len(msgs) != n {
		t.Fatalf("store holds %d messages, want %d", len(msgs), n)
	}
	for i, m := range msgs {
		if m.Seq != uint64(i+1) {
			t.Fatalf("message %d has seq %d", i, m.Seq)
		}
	}

	for seq := uint64(n + 1); seq <= n+5; seq++ {
		s.send(heartbeat(seq))
	}
	s.send(heartbeat(0)) // invalid: no sequence number
	for last < n+5 {
		resp, err := s.recv()
		if err != nil {
			t.Fatalf("stream ended (%v) before the valid messages were acked (at %d)", err,
				last)
		}
		last = resp.GetAck().GetUpToSeq()
	}
	s.wantCode(codes.InvalidArgument)
	if got := getAgent(t, e.store, "a1").AckedSeq; got != n+5 {
		t.Fatalf("acked seq = %d, want %d", got, n+5)
	}
}

func TestMalformedMessages(t *testing.T) {
	tests := []struct {
		name    string
		msgs    []*wardv1.ConnectRequest // after a valid hello, unless first is set
		noHello bool
		code    codes.Code
	}{
		{name: "no body", msgs: []*wardv1.ConnectRequest{{Seq: 1}}, code: codes.InvalidArgument},
		{name: "seq 0", msgs: []*wardv1.ConnectRequest{heartbeat(0)}, code: codes.InvalidArgument},
		{name: "second hello", msgs: []*wardv1.ConnectRequest{{Seq: 1,
			Body: &wardv1.ConnectRequest_Hello{Hello: &wardv1.Hello{}}}},
			code: codes.InvalidArgument},
		{name: "first not hello", noHello: true, msgs: []*wardv1.ConnectRequest{heartbeat(1)},
			code: codes.InvalidArgument},
		{name: "hello with seq", noHello: true, msgs: []*wardv1.ConnectRequest{{Seq: 4,
			Body: &wardv1.ConnectRequest_Hello{Hello: &wardv1.Hello{}}}},
			code: codes.InvalidArgument},
		{name: "hello with bad host facts", noHello: true, msgs: []*wardv1.ConnectRequest{{
			Body: &wardv1.ConnectRequest_Hello{Hello: &wardv1.Hello{
				Host: &wardv1.HostFacts{Hostname: strings.Repeat("h", 300)}}}}},
			code: codes.InvalidArgument},
		{name: "drift report without check id", msgs: []*wardv1.ConnectRequest{{Seq: 1,
			Body: &wardv1.ConnectRequest_DriftReport{DriftReport: &wardv1.DriftReport{
				Results: []*wardv1.CheckResult{{State: wardv1.CheckState_CHECK_STATE_PASS}}}}}},
			code: codes.InvalidArgument},
		{name: "discovery with bad subnet", msgs: []*wardv1.ConnectRequest{{Seq: 1,
			Body: &wardv1.ConnectRequest_DiscoveryReport{DiscoveryReport: &wardv1.DiscoveryReport{
				Subnet: "not-a-subnet"}}}},
			code: codes.InvalidArgument},
		{name: "witness for another tenant", msgs: []*wardv1.ConnectRequest{{Seq: 1,
			Body: &wardv1.ConnectRequest_WitnessSignature{WitnessSignature: &wardv1.WitnessSignature{
				Tenant: "clinic-b", Size: 3}}}},
			code: codes.PermissionDenied},
	}
	e := newEnv(t, envOptions{})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "m" + string(rune('a'+i))
			a := e.enrollAgent(id, "clinic-a")
			s := a.connect(t)
			if !tt.noHello {
				s.hello()
			}
			for _, m := range tt.msgs {
				s.send(m)
			}
			s.wantCode(tt.code)
			if n := len(messages(t, e.store, "clinic-a", id)); n != 0 {
				t.Fatalf("store holds %d messages, want none", n)
			}
			if got := getAgent(t, e.store, id).AckedSeq; got != 0 {
				t.Fatalf("acked seq = %d, want 0", got)
			}
		})
	}
}

func TestWitnessForOwnTenantIsStored(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.enrollAgentAs("a1", "clinic-a", "host", "collector")
	s := a.connect(t)
	s.helloAs("host", "collector")
	s.send(&wardv1.ConnectRequest{Seq: 1, Body: &wardv1.ConnectRequest_WitnessSignature{
		WitnessSignature: &wardv1.WitnessSignature{Tenant: "clinic-a", Size: 3}}})
	if got := s.ack(); got != 1 {
		t.Fatalf("ack = %d", got)
	}
}

// commandOwners is a command table for the ownership test.
type commandOwners map[string]string

func (c commandOwners) CommandAgent(_ context.Context, id string) (string, error) {
	owner, ok := c[id]
	if !ok {
		return "", ErrUnknownCommand
	}
	return owner, nil
}

func TestCommandResultOfAnotherAgent(t *testing.T) {
	owners := commandOwners{"cmd-1": "a1", "cmd-2": "a2"}
	e := newEnv(t, envOptions{cfg: func(c *Config) { c.Commands = owners }})
	a1 := e.enrollAgent("a1", "clinic-a")
	e.enrollAgent("a2", "clinic-a")

	result := func(seq uint64, cmd string) *wardv1.ConnectRequest {
		return &wardv1.ConnectRequest{Seq: seq, Body: &wardv1.ConnectRequest_CommandResult{
			CommandResult: &wardv1.CommandResult{CommandId: cmd,
				Status: wardv1.CommandStatus_COMMAND_STATUS_SUCCEEDED}}}
	}

	s := a1.connect(t)
	s.hello()
	s.send(result(1, "cmd-1"))
	s.send(result(2, "cmd-2")) // without waiting: possibly in one batch with the first
	if got := s.ack(); got != 1 {
		t.Fatalf("ack of own command result = %d", got)
	}
	s.wantCode(codes.PermissionDenied)

	if n := len(messages(t, e.store, "clinic-a", "a1")); n != 1 {
		t.Fatalf("store holds %d messages, want only the own result", n)
	}

	// A command the store does not know (expired and pruned, say) is no one else's: it is
	// stored, or the agent would resend it forever.
	s = a1.connect(t)
	s.hello()
	s.send(result(2, "cmd-unknown"))
	if got := s.ack(); got != 2 {
		t.Fatalf("ack of a result for an unknown command = %d", got)
	}
}

func TestOversizedMessage(t *testing.T) {
	e := newEnv(t, envOptions{maxRecvMsg: 64 << 10})
	a := e.enrollAgent("a1", "clinic-a")
	s := a.connect(t)
	s.hello()

	s.send(&wardv1.ConnectRequest{Seq: 1, Body: &wardv1.ConnectRequest_DriftReport{
		DriftReport: &wardv1.DriftReport{Results: []*wardv1.CheckResult{{
			CheckId: "X", Observed: strings.Repeat("x", 70<<10)}}}}})
	s.wantCode(codes.ResourceExhausted)
	if n := len(messages(t, e.store, "clinic-a", "a1")); n != 0 {
		t.Fatalf("store holds %d messages, want none", n)
	}
}

func TestRateFlood(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *Config) {
		c.MessageRate = 1
		c.MessageBurst = 5
	}})
	a := e.enrollAgent("a1", "clinic-a")
	s := a.connect(t)
	s.hello()

	for seq := uint64(1); seq <= 5; seq++ {
		s.send(heartbeat(seq))
		if got := s.ack(); got != seq {
			t.Fatalf("ack = %d, want %d", got, seq)
		}
	}
	s.send(heartbeat(6))
	s.wantCode(codes.ResourceExhausted)

	// Reconnecting does not refill the bucket.
	s = a.connect(t)
	s.hello()
	s.send(heartbeat(6))
	s.wantCode(codes.ResourceExhausted)
	if n := len(messages(t, e.store, "clinic-a", "a1")); n != 5 {
		t.Fatalf("store holds %d messages, want 5", n)
	}
}

func TestSecondStreamReplacesFirst(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.enrollAgent("a1", "clinic-a")
	first := a.connect(t)
	first.hello()

	second := a.connect(t)
	second.hello()
	first.wantCode(codes.Aborted)

	second.send(heartbeat(1))
	if got := second.ack(); got != 1 {
		t.Fatalf("ack on the new stream = %d", got)
	}
	if !e.srv.Connected("a1") {
		t.Fatal("the replaced stream's end unregistered the new one")
	}
}

func TestCloseAgentClosesLiveStream(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.enrollAgent("a1", "clinic-a")
	s := a.connect(t)
	s.hello()

	start := time.Now()
	e.srv.CloseAgent("a1")
	s.wantCode(codes.PermissionDenied)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stream closed after %v", d)
	}
}

func TestRevocationInStoreClosesStream(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.enrollAgent("a1", "clinic-a")
	other := e.enrollAgent("a2", "clinic-a")
	s := a.connect(t)
	s.hello()
	os := other.connect(t)
	os.hello()

	// Revoked by "another replica": only the store knows.
	start := time.Now()
	_, err := e.store.UpdateAgent(context.Background(), "a1", func(ag *store.Agent) error {
		ag.Revoked = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.wantCode(codes.PermissionDenied)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stream closed %v after revocation, want within 5 s", d)
	}

	// The other agent is unaffected, and the revoked one cannot come back.
	os.send(heartbeat(1))
	if got := os.ack(); got != 1 {
		t.Fatalf("other agent's ack = %d", got)
	}
	s = a.connect(t)
	s.send(&wardv1.ConnectRequest{Body: &wardv1.ConnectRequest_Hello{Hello: &wardv1.Hello{}}})
	s.wantCode(codes.PermissionDenied)
}

func TestHelloTimeout(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *Config) { c.HelloTimeout = 200 * time.Millisecond }})
	a := e.enrollAgent("a1", "clinic-a")
	s := a.connect(t)
	s.wantCode(codes.DeadlineExceeded)
}

func TestConcurrentStreamsLeaveOne(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.enrollAgent("a1", "clinic-a")

	const n = 6
	streams := make([]*stream, n)
	var wg sync.WaitGroup
	for i := range n {
		streams[i] = a.connect(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			streams[i].send(&wardv1.ConnectRequest{Body: &wardv1.ConnectRequest_Hello{
				Hello: &wardv1.Hello{}}})
		}()
	}
	wg.Wait()

	// Every stream but one is replaced, before or after its Welcome.
	alive := 0
	for i, s := range streams {
		s.send(heartbeat(uint64(i + 1)))
		for {
			m, err := s.recv()
			if err != nil {
				if status.Code(err) != codes.Aborted {
					t.Fatalf("stream %d ended with %v, want Aborted", i, err)
				}
				break
			}
			if m.GetAck() != nil {
				alive++
				break
			}
		}
	}
	// A heartbeat on a replaced stream may race its replacement, so count the survivors
	// by the registry instead: exactly one session, and it is usable.
	if !e.srv.Connected("a1") {
		t.Fatal("no stream left for the agent")
	}
	if alive < 1 {
		t.Fatal("no stream acknowledged a heartbeat")
	}
	if got := len(e.srv.sessions.snapshot()); got != 1 {
		t.Fatalf("%d sessions registered, want 1", got)
	}
}

func TestCloseAgentWithoutStream(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.enrollAgent("a1", "clinic-a")
	e.srv.CloseAgent("a1")     // no stream: nothing to do
	e.srv.CloseAgent("nobody") // unknown: nothing to do
	if e.srv.Connected("a1") {
		t.Fatal("Connected without a stream")
	}
}
