package agentapi

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/time/rate"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Reasons a session is ended from outside its stream; they become the stream's status.
var (
	errReplaced = errors.New("agentapi: replaced by a newer stream of the same agent")
	errRevoked  = errors.New("agentapi: agent revoked")
	errShutdown = errors.New("agentapi: controller shutting down")
	// errRolesChanged: an operator changed the agent's roles.
	errRolesChanged = errors.New("agentapi: agent roles changed")
)

// session is one open Connect stream.
type session struct {
	agentID string
	tenant  string
	cancel  context.CancelCauseFunc // ends the stream with its cause
	limiter *rate.Limiter           // the agent's message rate, shared with its other sessions
	stream  wardv1.AgentService_ConnectServer
	allowed []string // the roles stored with the agent when the stream opened
	// roles are the roles accepted at the Hello (listed by it and allowed the agent),
	// set before the session's first message is handled; collector is whether they
	// include store.AgentRoleCollector.
	roles     []string
	collector bool

	inbox inbox  // received messages on their way to the store
	acked uint64 // the agent's acknowledged sequence number; the committer's alone

	finalMu sync.Mutex
	final   error // the status the session's cancel function wrote

	sendMu sync.Mutex // serialises stream.Send between the committer and the push writer

	pushMu  sync.Mutex // guards the fields below
	pushes  []*wardv1.ConnectResponse
	ready   bool // the Welcome is sent; pushes may be written
	writing bool // a writer goroutine is running
	ended   bool // the stream is over; pushes are refused
}

// setFinal records the status that ended the session.
func (ss *session) setFinal(err error) {
	ss.finalMu.Lock()
	defer ss.finalMu.Unlock()
	ss.final = err
}

// finalStatus returns the status that ended the session, or nil.
func (ss *session) finalStatus() error {
	ss.finalMu.Lock()
	defer ss.finalMu.Unlock()
	return ss.final
}

// registry holds the open session of each agent: at most one per agent id, and counts
// the goroutines serving streams so that shutdown can wait for them. It is safe for
// concurrent use.
type registry struct {
	workers sync.WaitGroup // stream workers started by startWorker

	mu       sync.Mutex // guards the fields below
	sessions map[string]*session
	limiters map[string]*rate.Limiter // per agent, kept across reconnects; see pruneLimiters
	closed   bool                     // set by closeAll; no new sessions or workers after it
}

func newRegistry() *registry {
	return &registry{
		sessions: make(map[string]*session),
		limiters: make(map[string]*rate.Limiter),
	}
}

// limiter returns the agent's message rate limiter, making one with limit and burst if it
// has none, so that reconnecting does not refill the agent's bucket.
func (r *registry) limiter(agentID string, limit rate.Limit, burst int) *rate.Limiter {
	r.mu.Lock()
	defer r.mu.Unlock()

	lim, ok := r.limiters[agentID]
	if !ok {
		lim = rate.NewLimiter(limit, burst)
		r.limiters[agentID] = lim
	}
	return lim
}

// pruneLimiters forgets the limiters of agents without a session whose bucket has refilled:
// a fresh limiter would behave the same. It keeps memory bounded by the agents active
// recently.
func (r *registry) pruneLimiters() {
	r.mu.Lock()
	defer r.mu.Unlock()

	for id, lim := range r.limiters {
		if _, open := r.sessions[id]; !open && lim.Tokens() >= float64(lim.Burst()) {
			delete(r.limiters, id)
		}
	}
}

// startWorker counts a new stream worker, which must call r.workers.Done when it ends.
// It reports false, counting nothing, once closeAll has run.
func (r *registry) startWorker() bool {
	r.mu.Lock()
	defer r.mu.Unlock()

	if r.closed {
		return false
	}
	r.workers.Add(1)
	return true
}

// add makes s the agent's session. A session it replaces is cancelled with errReplaced.
// After closeAll it cancels s with errShutdown instead.
func (r *registry) add(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()

	if r.closed {
		s.cancel(errShutdown)
		return
	}
	if old, ok := r.sessions[s.agentID]; ok {
		old.cancel(errReplaced)
	}
	r.sessions[s.agentID] = s
}

// remove forgets s, unless a newer session has already replaced it.
func (r *registry) remove(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()

	if r.sessions[s.agentID] == s {
		delete(r.sessions, s.agentID)
	}
}

// close cancels the agent's session, if it has one, with cause. It reports whether there
// was one.
func (r *registry) close(agentID string, cause error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()

	s, ok := r.sessions[agentID]
	if ok {
		s.cancel(cause)
		delete(r.sessions, agentID)
	}
	return ok
}

// closeAll cancels every session with cause and refuses new ones from then on.
func (r *registry) closeAll(cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()

	r.closed = true
	for id, s := range r.sessions {
		s.cancel(cause)
		delete(r.sessions, id)
	}
}

// has reports whether the agent has a session.
func (r *registry) has(agentID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()

	_, ok := r.sessions[agentID]
	return ok
}

// get returns the agent's session, or nil.
func (r *registry) get(agentID string) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions[agentID]
}

// snapshot returns the open sessions' agent ids and tenants.
func (r *registry) snapshot() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()

	out := make(map[string]string, len(r.sessions))
	for id, s := range r.sessions {
		out[id] = s.tenant
	}
	return out
}
