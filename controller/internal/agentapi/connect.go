package agentapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/enroll"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// CollectorRole is the role a collector's Hello lists. Only an agent allowed it
// (store.Agent.AllowedRoles) may list it, and only a session with it may send discovery
// reports, device poll reports and witness signatures.
const CollectorRole = store.AgentRoleCollector

// connectMethod names Connect in authorisation metrics.
const connectMethod = "/ward.v1.AgentService/Connect"

// errPermission marks a message that names another agent or tenant, or that only a
// collector may send.
var errPermission = errors.New("message names another agent or tenant")

// errCollectorOnly marks a message only a collector session may send (a permission error).
var errCollectorOnly = fmt.Errorf("%w: only a collector may send it", errPermission)

// roleError is a Hello listing a role the agent is not allowed.
type roleError struct{ role string }

func (e *roleError) Error() string {
	return fmt.Sprintf("role %q not allowed for this agent", e.role)
}

// sessionRoles returns the roles a Hello lists, without duplicates, or a *roleError for
// the first one not in allowed.
func sessionRoles(claimed, allowed []string) ([]string, error) {
	var roles []string
	for _, r := range claimed {
		if !slices.Contains(allowed, r) {
			return nil, &roleError{role: r}
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return roles, nil
}

// Connect implements AgentService.Connect.
//
// One goroutine, the handler's own, serves an idle stream: it reads the Hello, sends the
// Welcome, then waits in Recv for the next message. Messages it receives go to the
// session's inbox, and a committer goroutine, started when the inbox gets its first
// message and gone once it is empty, commits whatever has arrived in one store
// transaction and acknowledges it with one cumulative ack.
//
// A session ended from outside (replaced, revoked, roles changed, shutdown, no Hello in
// time) or by its committer (a refused message, a store failure) is ended by the
// session's cancel function (see endSession): it writes the stream's status, then
// cancels the stream's context (see StreamTap), which makes the pending Recv return. The
// handler then waits for the committer and returns.
func (s *Server) Connect(stream wardv1.AgentService_ConnectServer) error {
	ctx := stream.Context()
	cancel, ok := ctx.Value(streamCancelKey{}).(context.CancelCauseFunc)
	w, wok := grpc.ServerTransportStreamFromContext(ctx).(statusWriter)
	if !ok || !wok {
		s.log.Error("agent stream refused: the gRPC server cannot end streams early " +
			"(agentapi.StreamTap missing, or a gRPC without WriteStatus)")
		return status.Error(codes.Internal, "agent streams are not served here")
	}
	defer cancel(nil)
	caller, err := s.agentCaller(ctx)
	if err != nil {
		return err
	}
	agent, err := s.enrolledAgent(ctx, caller)
	if err != nil {
		return err
	}

	sess := &session{
		agentID: caller.Name,
		tenant:  caller.Tenant,
		limiter: s.sessions.limiter(caller.Name, s.cfg.MessageRate, s.cfg.MessageBurst),
		stream:  stream,
		allowed: agent.AllowedRoles(),
	}
	sess.cancel = s.endSession(caller, sess, w, cancel)
	start := time.Now()
	err = s.serve(ctx, caller, sess)
	s.log.Info("agent disconnected", logkey.Agent, caller.Name, logkey.Tenant, caller.Tenant,
		logkey.Reason, status.Code(err).String(),
		logkey.Duration, time.Since(start).Round(time.Millisecond))
	return err
}

// statusWriter is what gRPC's server transport stream (grpc.ServerTransportStream) also
// implements: ending the stream with a status, as returning from the handler does, but
// from any goroutine. gRPC's documented API has no other way to end a stream whose
// handler waits in Recv, and a Recv that a cancelled context interrupts ends the stream
// with Canceled at once, before the handler can say why. Connect refuses to serve without
// it, so a gRPC upgrade that drops it fails every stream test at once.
type statusWriter interface {
	WriteStatus(st *status.Status) error
}

// endSession returns the session's cancel function. Its first call ends the stream: it
// turns the cause into the stream's status (logged and counted once), writes it, and then
// cancels the stream's context with the cause. Later calls do nothing.
func (s *Server) endSession(caller identity.ID, sess *session, w statusWriter,
	cancel context.CancelCauseFunc) context.CancelCauseFunc {
	var once sync.Once
	return func(cause error) {
		once.Do(func() {
			err := s.causeStatus(caller, cause)
			sess.setFinal(err)
			_ = w.WriteStatus(status.Convert(err)) // fails only if the stream is over
			cancel(cause)
		})
	}
}

// over returns the status of a session whose context has ended: the one its cancel
// function wrote, or the context's own (the agent went away).
func over(ctx context.Context, sess *session) error {
	if err := sess.finalStatus(); err != nil {
		return err
	}
	return status.FromContextError(context.Cause(ctx)).Err()
}

// streamCancelKey keys the cancel function of a Connect stream's context.
type streamCancelKey struct{}

// StreamTap returns the server option that Connect needs: it gives each Connect stream a
// context that the stream's session can cancel with a cause. gRPC's server cannot
// interrupt a handler's pending Recv otherwise, short of closing the connection, which
// would lose the status that tells the agent why its stream ended.
func StreamTap() grpc.ServerOption {
	return grpc.InTapHandle(func(ctx context.Context, info *tap.Info) (context.Context, error) {
		if info.FullMethodName != connectMethod {
			return ctx, nil
		}
		ctx, cancel := context.WithCancelCause(ctx)
		return context.WithValue(ctx, streamCancelKey{}, cancel), nil
	})
}

// Limits of one batch: the messages committed in one transaction and acknowledged by one
// ack. inboxSize is how many received messages may wait for the committer; the handler
// stops reading (and HTTP/2 flow control slows the agent) while that many wait.
const (
	maxBatch      = 64
	maxBatchBytes = 1 << 20
	inboxSize     = 16
)

// refusal is a session cancelled by its committer: err becomes the stream's status.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// inbox holds a session's received messages until its committer takes them. The
// committer goroutine runs only while messages wait, so an idle stream costs none.
type inbox struct {
	mu      sync.Mutex // guards the fields below
	msgs    []*wardv1.ConnectRequest
	busy    chan struct{} // non-nil while a committer runs; closed when it exits
	space   chan struct{} // non-nil while the handler waits for room; closed at a take
	stopped bool          // no more messages are accepted
}

// put adds m to the inbox, starting a committer with start if none runs. While the inbox
// is full it waits for room until ctx ends. It reports false when m was not added: ctx
// ended, the inbox was stopped, or no committer could be started (shutdown).
func (in *inbox) put(ctx context.Context, m *wardv1.ConnectRequest,
	start func() bool) bool {
	for {
		in.mu.Lock()
		if in.stopped {
			in.mu.Unlock()
			return false
		}
		if len(in.msgs) < inboxSize {
			if in.busy == nil {
				if !start() {
					in.mu.Unlock()
					return false
				}
				in.busy = make(chan struct{})
			}
			in.msgs = append(in.msgs, m)
			in.mu.Unlock()
			return true
		}
		if in.space == nil {
			in.space = make(chan struct{})
		}
		space := in.space
		in.mu.Unlock()

		select {
		case <-space:
		case <-ctx.Done():
			return false
		}
	}
}

// take removes and returns the oldest messages, up to the batch limits. When none wait,
// the committer is over: take marks it gone, closes its channel and returns nil.
func (in *inbox) take() []*wardv1.ConnectRequest {
	in.mu.Lock()
	defer in.mu.Unlock()

	if len(in.msgs) == 0 {
		close(in.busy)
		in.busy = nil
		return nil
	}
	n, size := 0, 0
	for n < len(in.msgs) && n < maxBatch && size < maxBatchBytes {
		size += proto.Size(in.msgs[n])
		n++
	}
	batch := slices.Clone(in.msgs[:n])
	rest := copy(in.msgs, in.msgs[n:])
	clear(in.msgs[rest:]) // the array must not keep taken messages alive
	in.msgs = in.msgs[:rest]
	if in.space != nil {
		close(in.space)
		in.space = nil
	}
	return batch
}

// abandon drops what waits and ends the committer, which must be the caller.
func (in *inbox) abandon() {
	in.mu.Lock()
	defer in.mu.Unlock()

	in.stopped = true
	clear(in.msgs)
	in.msgs = nil
	close(in.busy)
	in.busy = nil
}

// drain stops accepting messages and waits until the committer has committed what waits,
// or given up.
func (in *inbox) drain() {
	in.mu.Lock()
	in.stopped = true
	busy := in.busy
	in.mu.Unlock()
	if busy != nil {
		<-busy
	}
}

// recvChecked receives the next message and checks its form and the agent's rate.
func recvChecked(stream wardv1.AgentService_ConnectServer, sess *session) (
	*wardv1.ConnectRequest, error) {
	m, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	if err := validate(m); err != nil {
		return nil, err
	}
	if !sess.limiter.Allow() {
		return nil, errRate
	}
	return m, nil
}

// causeStatus turns the cause of a session's end into the stream's status.
func (s *Server) causeStatus(caller identity.ID, cause error) error {
	var rf *refusal
	switch {
	case errors.As(cause, &rf):
		return s.refuse(caller, rf.err)
	case errors.Is(cause, errReplaced):
		s.cfg.Metrics.StreamClosed("replaced")
		s.log.Info("agent stream replaced", logkey.Agent, caller.Name)
		return status.Error(codes.Aborted, "replaced by a newer stream")
	case errors.Is(cause, errRevoked):
		return status.Error(codes.PermissionDenied, "agent revoked")
	case errors.Is(cause, errHelloTimeout):
		s.log.Warn("agent sent no hello", logkey.Agent, caller.Name)
		return status.Error(codes.DeadlineExceeded, "no hello in time")
	case errors.Is(cause, errShutdown):
		return status.Error(codes.Unavailable, "controller shutting down")
	case errors.Is(cause, errRolesChanged):
		return status.Error(codes.Aborted, "agent roles changed: reconnect")
	}
	return status.FromContextError(cause).Err()
}

// serve runs one session: Hello and Welcome, then messages until the stream ends or ctx
// is cancelled.
func (s *Server) serve(ctx context.Context, caller identity.ID, sess *session) error {
	hello, err := s.recvHello(sess)
	if err != nil {
		if ctx.Err() != nil {
			return over(ctx, sess)
		}
		return s.refuse(caller, err)
	}
	var host *store.HostFacts // nil: the hello carries none; keep the stored facts
	if pb := hello.GetHello().GetHost(); pb != nil {
		facts, err := enroll.HostFacts(pb)
		if err != nil {
			return s.refuse(caller, invalid("hello: %v", err))
		}
		host = &facts
	}

	// Nothing is stored before the roles are checked: a refused Hello leaves no trace.
	roles, err := sessionRoles(hello.GetHello().GetHost().GetRoles(), sess.allowed)
	if err != nil {
		return s.refuse(caller, err)
	}
	sess.roles, sess.collector = roles, slices.Contains(roles, CollectorRole)
	s.sessions.add(sess)
	defer s.sessions.remove(sess)
	defer sess.end()
	if ctx.Err() != nil {
		return over(ctx, sess) // shutting down
	}
	s.cfg.Metrics.AgentConnected(caller.Tenant)
	defer s.cfg.Metrics.AgentDisconnected(caller.Tenant)

	acked, err := s.welcome(ctx, sess, caller, host)
	if err != nil {
		if ctx.Err() != nil {
			return over(ctx, sess)
		}
		return err
	}
	sess.acked = acked
	sess.markReady(s.sessions)
	if s.cfg.Observer != nil {
		octx, cancel := s.observerContext(ctx)
		s.cfg.Observer.Connected(octx, caller.Tenant, caller.Name, sess.roles,
			hello.GetHello())
		cancel()
	}

	startCommitter := func() bool {
		if !s.sessions.startWorker() {
			return false
		}
		go func() {
			defer s.sessions.workers.Done()
			s.commitInbox(ctx, caller, sess)
		}()
		return true
	}
	for {
		m, err := recvChecked(sess.stream, sess)
		if err == nil && sess.inbox.put(ctx, m, startCommitter) {
			continue
		}
		// what arrived before is committed, or refused, before the stream ends
		sess.inbox.drain()
		switch {
		case ctx.Err() != nil:
			return over(ctx, sess)
		case err == nil: // no committer could start
			return status.Error(codes.Unavailable, "controller shutting down")
		case errors.Is(err, io.EOF):
			return nil
		}
		return s.refuse(caller, err)
	}
}

// commitInbox is the committer: it commits and acknowledges the session's inbox, batch
// after batch, until the inbox is empty. A batch that fails cancels the session with a
// refusal, whose error becomes the stream's status.
func (s *Server) commitInbox(ctx context.Context, caller identity.ID, sess *session) {
	for {
		batch := sess.inbox.take()
		if batch == nil {
			return
		}
		if err := s.commitBatch(ctx, caller, sess, batch); err != nil {
			sess.cancel(&refusal{err: err}) // first: the handler must see ctx end
			sess.inbox.abandon()
			return
		}
	}
}

// commitBatch commits a batch, hands what was new to the Processor, acknowledges it and
// tells the Observer. An error ends the session.
func (s *Server) commitBatch(ctx context.Context, caller identity.ID, sess *session,
	batch []*wardv1.ConnectRequest) error {
	acked, committed, stored, err := s.handle(ctx, caller, sess, batch, sess.acked)
	if ctx.Err() != nil {
		return ctx.Err() // the session is over; its cause gives the status
	}
	sess.acked = acked

	// stored but not processed: no ack now (the Welcome of the next stream carries it);
	// the Processor catches up from the store when the agent connects again
	octx, cancel := s.observerContext(ctx)
	defer cancel()
	perr := s.process(octx, caller, committed)
	if stored && perr == nil {
		// also when a later message of the batch is refused: what came before it is on
		// disk and the agent must not send it again
		if err := sess.send(ackResponse(acked)); err != nil {
			return err
		}
	}
	s.observe(octx, caller, committed)
	if perr != nil {
		return perr
	}
	return err
}

// process hands committed messages to the Processor, in order, before they are
// acknowledged, with ctx from observerContext. Its error is a storeError: the agent is not
// at fault.
func (s *Server) process(ctx context.Context, caller identity.ID,
	committed []*wardv1.ConnectRequest) error {
	if s.cfg.Processor == nil {
		return nil
	}
	for _, m := range committed {
		if err := s.cfg.Processor.Process(ctx, caller.Tenant, caller.Name, m); err != nil {
			return &storeError{err: fmt.Errorf("process message %d: %w", m.GetSeq(), err)}
		}
	}
	return nil
}

// observe tells the Observer of committed messages, in order, with ctx from
// observerContext.
func (s *Server) observe(ctx context.Context, caller identity.ID,
	committed []*wardv1.ConnectRequest) {
	if s.cfg.Observer == nil {
		return
	}
	for _, m := range committed {
		s.cfg.Observer.Committed(ctx, caller.Tenant, caller.Name, m)
	}
}

// observerTimeout bounds the Observer's Connected call, and the Processor and Observer
// calls for one batch together (one timer per batch, not two per message). Their context
// is not cancelled when the stream ends: what was committed is processed even if the
// agent has gone.
const observerTimeout = 30 * time.Second

func (s *Server) observerContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), observerTimeout)
}

// recvHello waits up to HelloTimeout for the first message and checks that it is a Hello
// with seq 0. The timeout cancels the session, which makes the pending Recv return.
func (s *Server) recvHello(sess *session) (*wardv1.ConnectRequest, error) {
	timer := time.AfterFunc(s.cfg.HelloTimeout, func() { sess.cancel(errHelloTimeout) })
	defer timer.Stop()

	m, err := sess.stream.Recv()
	if err != nil {
		return nil, err
	}
	if _, ok := m.GetBody().(*wardv1.ConnectRequest_Hello); !ok {
		return nil, invalid("first message is not a hello")
	}
	if m.GetSeq() != 0 {
		return nil, invalid("hello with a sequence number")
	}
	return m, nil
}

// welcome records the new connection (host facts, last seen, online) and sends the
// Welcome. It returns the agent's acknowledged sequence number. The session's roles are
// checked again in the same transaction: an operator who narrowed them after the stream
// opened, before its session was registered to be reset, is not outrun.
func (s *Server) welcome(ctx context.Context, sess *session, caller identity.ID,
	host *store.HostFacts) (uint64, error) {
	now := s.clock()
	wasOnline := false
	a, err := s.cfg.Store.UpdateAgent(ctx, caller.Name, func(a *store.Agent) error {
		if a.Revoked {
			return errRevoked
		}
		if _, err := sessionRoles(sess.roles, a.AllowedRoles()); err != nil {
			return err
		}
		wasOnline = a.Online
		if host != nil {
			a.Host = *host
		}
		a.LastSeen = now
		a.Online = true
		return nil
	})
	var re *roleError
	switch {
	case errors.Is(err, errRevoked):
		return 0, status.Error(codes.PermissionDenied, "agent revoked")
	case errors.As(err, &re):
		return 0, s.refuse(caller, err)
	}
	if err != nil {
		s.log.Error("record agent connection", logkey.Agent, caller.Name, logkey.Error, err)
		return 0, status.Error(codes.Unavailable, "store unavailable")
	}

	s.log.Info("agent connected", logkey.Agent, caller.Name, logkey.Tenant, caller.Tenant,
		logkey.Seq, a.AckedSeq, "was_online", wasOnline)

	err = sess.send(&wardv1.ConnectResponse{Body: &wardv1.ConnectResponse_Welcome{
		Welcome: &wardv1.Welcome{
			AgentId:           caller.Name,
			HeartbeatInterval: durationpb.New(s.cfg.HeartbeatInterval),
			AckedSeq:          a.AckedSeq,
			ServerTime:        timestamppb.New(now),
			MaxMessageBytes:   uint32(s.cfg.MaxMessageBytes),
			MessageRate:       float64(s.cfg.MessageRate),
			MessageBurst:      uint32(s.cfg.MessageBurst),
		},
	}})
	if err != nil {
		return 0, err
	}
	return a.AckedSeq, nil
}

// handle commits a batch of checked messages in one transaction. It returns the new
// acknowledged sequence number, the messages that were new (not duplicates) in order, and
// whether the transaction was committed (then an ack is due, also for duplicates, which
// change nothing and are acknowledged again). A message naming what is not the caller's
// ends the batch: the messages before it are committed, and its error returned.
func (s *Server) handle(ctx context.Context, caller identity.ID, sess *session,
	batch []*wardv1.ConnectRequest, acked uint64) (
	uint64, []*wardv1.ConnectRequest, bool, error) {
	var refused error
	msgs := make([]store.Message, 0, len(batch))
	for _, m := range batch {
		if err := s.checkOwnership(ctx, caller, sess, m); err != nil {
			refused = err
			break
		}
		body, err := proto.Marshal(m)
		if err != nil {
			refused = fmt.Errorf("marshal message: %w", err)
			break
		}
		msgs = append(msgs, store.Message{
			Tenant:     caller.Tenant,
			Agent:      caller.Name,
			Seq:        m.GetSeq(),
			Type:       messageType(m),
			CreatedAt:  m.GetCreatedAt().AsTime(),
			ReceivedAt: s.clock(),
			Body:       body,
		})
	}
	if len(msgs) == 0 {
		return acked, nil, false, refused
	}

	dups, err := s.cfg.Store.CommitMessages(ctx, msgs)
	if err != nil {
		return acked, nil, false, &storeError{err: err}
	}
	committed := make([]*wardv1.ConnectRequest, 0, len(msgs))
	debug := s.log.Enabled(ctx, slog.LevelDebug) // spares boxing the attributes
	for i, m := range msgs {
		s.cfg.Metrics.Message(m.Type)
		if debug {
			s.log.Debug("agent message", logkey.Agent, caller.Name, logkey.Seq, m.Seq,
				logkey.MessageType, m.Type, "duplicate", dups[i])
		}
		if dups[i] {
			continue
		}
		committed = append(committed, batch[i])
		acked = max(acked, m.Seq)
	}
	return acked, committed, true, refused
}

// checkOwnership refuses a message whose body names another tenant, or reports on a
// command addressed to another agent. A command id the store does not know is let through
// with a warning: refusing it would make the agent resend it forever.
func (s *Server) checkOwnership(ctx context.Context, caller identity.ID, sess *session,
	m *wardv1.ConnectRequest) error {
	var commandID string
	switch b := m.GetBody().(type) {
	case *wardv1.ConnectRequest_WitnessSignature:
		if b.WitnessSignature.GetTenant() != caller.Tenant {
			return fmt.Errorf("%w: witness signature for tenant %q", errPermission,
				b.WitnessSignature.GetTenant())
		}
		if !sess.collector {
			return fmt.Errorf("witness signature: %w", errCollectorOnly)
		}
	case *wardv1.ConnectRequest_DiscoveryReport:
		if !sess.collector {
			return fmt.Errorf("discovery report: %w", errCollectorOnly)
		}
	case *wardv1.ConnectRequest_DevicePollReport:
		if b.DevicePollReport.GetTenant() != caller.Tenant {
			return fmt.Errorf("%w: device polls for tenant %q", errPermission,
				b.DevicePollReport.GetTenant())
		}
		if !sess.collector {
			return fmt.Errorf("device polls: %w", errCollectorOnly)
		}
	case *wardv1.ConnectRequest_CommandResult:
		commandID = b.CommandResult.GetCommandId()
	case *wardv1.ConnectRequest_DriftReport:
		commandID = b.DriftReport.GetCommandId()
	}
	if commandID == "" || s.cfg.Commands == nil {
		return nil
	}

	owner, err := s.cfg.Commands.CommandAgent(ctx, commandID)
	if errors.Is(err, ErrUnknownCommand) {
		s.log.Warn("message names an unknown command", logkey.Agent, caller.Name,
			logkey.Command, commandID, logkey.Seq, m.GetSeq())
		return nil
	}
	if err != nil {
		return &storeError{err: fmt.Errorf("look up command: %w", err)}
	}
	if owner != caller.Name {
		return fmt.Errorf("%w: command %q of agent %s", errPermission, commandID, owner)
	}
	return nil
}

// errRate is a message over the agent's rate.
var errRate = errors.New("message rate exceeded")

// errHelloTimeout ends a stream that sent no Hello in time.
var errHelloTimeout = errors.New("no hello in time")

// storeError is a store failure while handling a message: not the agent's fault.
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// refuse logs why a stream is being ended for one of its messages and returns the status
// the agent sees. Transport errors (the stream already broke) pass through unlogged.
func (s *Server) refuse(caller identity.ID, err error) error {
	var se *storeError
	var re *roleError
	attrs := []any{logkey.Agent, caller.Name, logkey.Tenant, caller.Tenant, logkey.Error, err}
	switch {
	case errors.As(err, &re):
		s.cfg.Metrics.StreamClosed("role")
		s.cfg.Metrics.AuthzDenied(connectMethod, "role not allowed")
		s.log.Warn("agent hello refused", append(attrs, logkey.Reason, "role",
			logkey.Roles, re.role)...)
		if re.role != CollectorRole {
			return status.Error(codes.PermissionDenied, re.Error())
		}
		return status.Errorf(codes.PermissionDenied, "%v; an operator grants it with "+
			"'wardctl agent roles %s --set host,collector', or enrolls the agent with a "+
			"token made with --role collector", re, caller.Name)
	case errors.Is(err, errInvalid):
		s.cfg.Metrics.StreamClosed("invalid")
		s.log.Warn("agent message refused", append(attrs, logkey.Reason, "invalid")...)
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, errRate):
		s.cfg.Metrics.StreamClosed("rate")
		s.log.Warn("agent message refused", append(attrs, logkey.Reason, "rate")...)
		return status.Error(codes.ResourceExhausted, "message rate exceeded")
	case errors.Is(err, errCollectorOnly):
		s.cfg.Metrics.StreamClosed("permission")
		s.log.Warn("agent message refused", append(attrs, logkey.Reason, "collector only")...)
		return status.Error(codes.PermissionDenied, "only a collector may send this message")
	case errors.Is(err, errPermission):
		s.cfg.Metrics.StreamClosed("permission")
		s.log.Warn("agent message refused", append(attrs, logkey.Reason, "permission")...)
		return status.Error(codes.PermissionDenied, "message names another agent or tenant")
	case errors.As(err, &se):
		s.log.Error("commit agent message", attrs...)
		return status.Error(codes.Unavailable, "store unavailable")
	}
	return err
}

// ackResponse wraps a cumulative acknowledgement.
func ackResponse(upTo uint64) *wardv1.ConnectResponse {
	return &wardv1.ConnectResponse{Body: &wardv1.ConnectResponse_Ack{
		Ack: &wardv1.Ack{UpToSeq: upTo},
	}}
}
