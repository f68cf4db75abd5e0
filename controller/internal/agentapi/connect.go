package agentapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
// Two goroutines serve a stream. The receiver (receive) reads messages, checks them and
// the agent's rate, and hands them over in order. The handler's own goroutine (serve)
// sends the Welcome, then commits whatever messages have arrived in one store transaction
// and acknowledges them with one cumulative ack, and waits for more or for the session to
// be cancelled (replaced, revoked, shutdown). On cancellation the handler returns at once;
// gRPC then ends the stream, which unblocks the receiver's pending Recv, and it exits.
func (s *Server) Connect(stream wardv1.AgentService_ConnectServer) error {
	ctx := stream.Context()
	caller, err := s.agentCaller(ctx)
	if err != nil {
		return err
	}
	agent, err := s.enrolledAgent(ctx, caller)
	if err != nil {
		return err
	}

	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sess := &session{
		agentID: caller.Name,
		tenant:  caller.Tenant,
		cancel:  cancel,
		limiter: s.sessions.limiter(caller.Name, s.cfg.MessageRate, s.cfg.MessageBurst),
		stream:  stream,
		allowed: agent.AllowedRoles(),
	}

	if !s.sessions.startWorker() {
		return status.Error(codes.Unavailable, "controller shutting down")
	}
	start := time.Now()
	inbox := make(chan inbound, inboxSize)
	go func() {
		defer s.sessions.workers.Done()
		s.receive(sctx, stream, sess, inbox)
	}()

	err = s.serve(sctx, caller, sess, inbox)
	s.log.Info("agent disconnected", logkey.Agent, caller.Name, logkey.Tenant, caller.Tenant,
		logkey.Reason, status.Code(err).String(),
		logkey.Duration, time.Since(start).Round(time.Millisecond))
	return err
}

// inboxSize is how many received messages may wait for the handler; the receiver stops
// reading (and HTTP/2 flow control slows the agent) while it is full.
const inboxSize = 16

// Limits of one batch: the messages committed in one transaction and acknowledged by one
// ack.
const (
	maxBatch      = 64
	maxBatchBytes = 1 << 20
)

// inbound is what the receiver hands to the handler: a checked message, or why the
// stream can be read no further (io.EOF when the agent closed it).
type inbound struct {
	m   *wardv1.ConnectRequest
	err error
}

// receive reads the Hello, then messages, checking each one and the agent's rate, and
// hands them to inbox in order until an error, which it hands over last, or until ctx
// ends.
func (s *Server) receive(ctx context.Context, stream wardv1.AgentService_ConnectServer,
	sess *session, inbox chan<- inbound) {
	m, err := s.recvHello(stream, sess)
	for {
		select {
		case inbox <- inbound{m: m, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
		m, err = recvChecked(stream, sess)
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

// endStatus turns the cause of a cancelled session into the stream's status.
func (s *Server) endStatus(sctx context.Context, caller identity.ID) error {
	cause := context.Cause(sctx)
	switch {
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

// serve runs one session on the handler's goroutine: Hello and Welcome, then batches of
// messages until the stream ends or ctx is cancelled.
func (s *Server) serve(ctx context.Context, caller identity.ID, sess *session,
	inbox <-chan inbound) error {
	var first inbound
	select {
	case first = <-inbox:
	case <-ctx.Done():
		return s.endStatus(ctx, caller)
	}
	if first.err != nil {
		return s.refuse(caller, first.err)
	}
	hello := first.m
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
		return s.endStatus(ctx, caller) // shutting down
	}
	s.cfg.Metrics.AgentConnected(caller.Tenant)
	defer s.cfg.Metrics.AgentDisconnected(caller.Tenant)

	acked, err := s.welcome(ctx, sess, caller, host)
	if err != nil {
		if ctx.Err() != nil {
			return s.endStatus(ctx, caller)
		}
		return err
	}
	sess.markReady(s.sessions)
	if s.cfg.Observer != nil {
		octx, cancel := s.observerContext(ctx)
		s.cfg.Observer.Connected(octx, caller.Tenant, caller.Name, sess.roles,
			hello.GetHello())
		cancel()
	}

	for {
		var in inbound
		select {
		case in = <-inbox:
		case <-ctx.Done():
			return s.endStatus(ctx, caller)
		}
		batch, end := gather(in, inbox)

		var committed []*wardv1.ConnectRequest
		var stored bool
		var err error
		if len(batch) > 0 {
			acked, committed, stored, err = s.handle(ctx, caller, sess, batch, acked)
			if ctx.Err() != nil {
				return s.endStatus(ctx, caller) // the handler has already answered
			}
		}
		// stored but not processed: no ack now (the Welcome of the next stream carries
		// it); the Processor catches up from the store when the agent connects again
		perr := s.process(ctx, caller, committed)
		if stored && perr == nil {
			// also when a later message of the batch is refused: what came before it is
			// on disk and the agent must not send it again
			if err := sess.send(ackResponse(acked)); err != nil {
				return err
			}
		}
		s.observe(ctx, caller, committed)
		if perr != nil {
			return s.refuse(caller, perr)
		}
		if err != nil {
			return s.refuse(caller, err)
		}
		if errors.Is(end, io.EOF) {
			return nil
		}
		if end != nil {
			return s.refuse(caller, end)
		}
	}
}

// gather returns first's message and every message already waiting in inbox after it,
// up to the batch limits, and the error that ended them, if one was handed over.
func gather(first inbound, inbox <-chan inbound) ([]*wardv1.ConnectRequest, error) {
	if first.err != nil {
		return nil, first.err
	}
	batch := []*wardv1.ConnectRequest{first.m}
	size := proto.Size(first.m)
	for len(batch) < maxBatch && size < maxBatchBytes {
		select {
		case in := <-inbox:
			if in.err != nil {
				return batch, in.err
			}
			batch = append(batch, in.m)
			size += proto.Size(in.m)
		default:
			return batch, nil
		}
	}
	return batch, nil
}

// process hands committed messages to the Processor, in order, before they are
// acknowledged. Its error is a storeError: the agent is not at fault.
func (s *Server) process(ctx context.Context, caller identity.ID,
	committed []*wardv1.ConnectRequest) error {
	if s.cfg.Processor == nil {
		return nil
	}
	for _, m := range committed {
		pctx, cancel := s.observerContext(ctx)
		err := s.cfg.Processor.Process(pctx, caller.Tenant, caller.Name, m)
		cancel()
		if err != nil {
			return &storeError{err: fmt.Errorf("process message %d: %w", m.GetSeq(), err)}
		}
	}
	return nil
}

// observe tells the Observer of committed messages, in order.
func (s *Server) observe(ctx context.Context, caller identity.ID,
	committed []*wardv1.ConnectRequest) {
	if s.cfg.Observer == nil {
		return
	}
	for _, m := range committed {
		octx, cancel := s.observerContext(ctx)
		s.cfg.Observer.Committed(octx, caller.Tenant, caller.Name, m)
		cancel()
	}
}

// observerTimeout bounds each Observer call. Its context is not cancelled when the stream
// ends: what was committed is processed even if the agent has gone.
const observerTimeout = 30 * time.Second

func (s *Server) observerContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), observerTimeout)
}

// recvHello waits up to HelloTimeout for the first message and checks that it is a Hello
// with seq 0.
// Recv cannot be interrupted, so the timeout cancels the session, which ends the handler
// and with it the stream.
func (s *Server) recvHello(stream wardv1.AgentService_ConnectServer, sess *session) (
	*wardv1.ConnectRequest, error) {
	timer := time.AfterFunc(s.cfg.HelloTimeout, func() { sess.cancel(errHelloTimeout) })
	defer timer.Stop()

	m, err := stream.Recv()
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
	for i, m := range msgs {
		s.cfg.Metrics.Message(m.Type)
		s.log.Debug("agent message", logkey.Agent, caller.Name, logkey.Seq, m.Seq,
			logkey.MessageType, m.Type, "duplicate", dups[i])
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
