package agentapi

import (
	"context"
	"errors"
	"fmt"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// MaxQueuedPushes bounds the messages waiting to be written to one agent's stream; Send
// refuses more with ErrPushQueueFull.
const MaxQueuedPushes = 64

// Errors of Send.
var (
	// ErrNotConnected means the agent has no open stream to this controller.
	ErrNotConnected = errors.New("agentapi: agent not connected")
	// ErrPushQueueFull means the agent's stream has MaxQueuedPushes messages waiting
	// already: it is not reading.
	ErrPushQueueFull = errors.New("agentapi: push queue full")
	// ErrNotCollector means the message is for collectors (a site configuration, a
	// checkpoint to witness) and the agent's session does not have the collector role.
	ErrNotCollector = errors.New("agentapi: agent session is not a collector")
)

// Observer learns what happens on agent streams, for example to run remediation. Its
// methods are called from the stream's goroutine, in the stream's order, with a context
// that outlives the stream by a bounded time. They must handle their own errors and should
// not block for long: the stream reads its next message only when they return.
type Observer interface {
	// Connected is called once the agent has its Welcome: Send works from now on. roles
	// are the session's roles: those its Hello listed, each one allowed the agent by an
	// operator (store.Agent.AllowedRoles); whether the agent is a collector is decided
	// from roles, never from hello. hello is the session's Hello (spool state, baseline
	// version). Neither may be modified.
	Connected(ctx context.Context, tenant, agentID string, roles []string,
		hello *wardv1.Hello)
	// Committed is called after a new (not duplicate) message is durably stored and
	// acknowledged. m must not be modified.
	Committed(ctx context.Context, tenant, agentID string, m *wardv1.ConnectRequest)
}

// Processor handles committed messages whose effects must be durable before the agent
// may forget them (a device poll report's incidents and their evidence records). Process
// is called from the stream's goroutine after the message is stored and before it is
// acknowledged, in order; an error ends the stream with Unavailable without the ack
// (the message stays stored, so the Processor must catch up from the store, for example
// when the agent connects again). It must be safe for concurrent use.
type Processor interface {
	Process(ctx context.Context, tenant, agentID string, m *wardv1.ConnectRequest) error
}

// Send queues m (a command, baseline update, checkpoint, site configuration or renewal
// request) for the agent's open stream and returns at once; the stream writes it after
// its Welcome, in order of Send calls. It returns an error wrapping ErrNotConnected when
// the agent has no stream here, ErrPushQueueFull when too much is waiting, or
// ErrNotCollector for a site configuration or checkpoint to a session without the
// collector role (whatever the caller believes the agent to be). A queued message is lost
// if the stream ends first; callers that need delivery keep it (stored commands are
// resent on the next Connected). m must not be modified after Send. Safe for concurrent
// use.
func (s *Server) Send(agentID string, m *wardv1.ConnectResponse) error {
	sess := s.sessions.get(agentID)
	if sess == nil {
		return fmt.Errorf("send to %s: %w", agentID, ErrNotConnected)
	}
	if forCollectors(m) && !sess.collector {
		return fmt.Errorf("send to %s: %w", agentID, ErrNotCollector)
	}
	return sess.push(m, s.sessions)
}

// forCollectors reports whether m may go only to a session with the collector role.
func forCollectors(m *wardv1.ConnectResponse) bool {
	switch m.GetBody().(type) {
	case *wardv1.ConnectResponse_SiteConfig, *wardv1.ConnectResponse_Checkpoint:
		return true
	}
	return false
}

// push queues m and starts the session's writer if it is ready and idle.
func (ss *session) push(m *wardv1.ConnectResponse, r *registry) error {
	ss.pushMu.Lock()
	defer ss.pushMu.Unlock()

	if ss.ended {
		return fmt.Errorf("send to %s: %w", ss.agentID, ErrNotConnected)
	}
	if len(ss.pushes) >= MaxQueuedPushes {
		return fmt.Errorf("send to %s: %w", ss.agentID, ErrPushQueueFull)
	}
	ss.pushes = append(ss.pushes, m)
	ss.startWriterLocked(r)
	return nil
}

// markReady lets queued and future pushes be written: the Welcome has been sent.
func (ss *session) markReady(r *registry) {
	ss.pushMu.Lock()
	defer ss.pushMu.Unlock()

	ss.ready = true
	ss.startWriterLocked(r)
}

// end drops queued pushes and refuses new ones.
func (ss *session) end() {
	ss.pushMu.Lock()
	defer ss.pushMu.Unlock()

	ss.ended = true
	ss.pushes = nil
}

// startWriterLocked starts a goroutine that writes the queue, unless one is running, the
// session is not ready or the queue is empty. The writer exists only while there is
// something to write, so idle agents cost no goroutine for it.
func (ss *session) startWriterLocked(r *registry) {
	if !ss.ready || ss.writing || len(ss.pushes) == 0 || !r.startWorker() {
		return
	}
	ss.writing = true
	go func() {
		defer r.workers.Done()
		ss.writeQueue()
	}()
}

// writeQueue writes queued pushes until the queue is empty or the stream fails.
func (ss *session) writeQueue() {
	for {
		ss.pushMu.Lock()
		if len(ss.pushes) == 0 || ss.ended {
			ss.writing = false
			ss.pushMu.Unlock()
			return
		}
		m := ss.pushes[0]
		ss.pushes[0] = nil // the backing array must not keep a sent message alive
		ss.pushes = ss.pushes[1:]
		if len(ss.pushes) == 0 {
			ss.pushes = nil
		}
		ss.pushMu.Unlock()

		if err := ss.send(m); err != nil {
			ss.end()
			ss.pushMu.Lock()
			ss.writing = false
			ss.pushMu.Unlock()
			return
		}
	}
}

// send writes m on the stream; the stream's writers take turns.
func (ss *session) send(m *wardv1.ConnectResponse) error {
	ss.sendMu.Lock()
	defer ss.sendMu.Unlock()
	return ss.stream.Send(m)
}
