package agentapi

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// errPermission marks a message that names another agent or tenant.
var errPermission = errors.New("message names another agent or tenant")

// Connect implements AgentService.Connect.
//
// The stream is served by a worker goroutine (receive, validate, commit, acknowledge),
// while the handler waits for the worker or for the session to be cancelled (replaced,
// revoked, shutdown). On cancellation the handler returns at once; gRPC then ends the
// stream, which unblocks the worker's pending Recv or Send, and the worker exits.
func (s *Server) Connect(stream wardv1.AgentService_ConnectServer) error {
	ctx := stream.Context()
	caller, err := s.agentCaller(ctx)
	if err != nil {
		return err
	}
	if _, err := s.enrolledAgent(ctx, caller); err != nil {
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
	}

	if !s.sessions.startWorker() {
		return status.Error(codes.Unavailable, "controller shutting down")
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		defer s.sessions.workers.Done()
		done <- s.serve(sctx, stream, caller, sess)
	}()

	select {
	case err = <-done:
	case <-sctx.Done():
		err = s.endStatus(sctx, caller)
	}
	s.log.Info("agent disconnected", logkey.Agent, caller.Name, logkey.Tenant, caller.Tenant,
		logkey.Reason, status.Code(err).String(),
		logkey.Duration, time.Since(start).Round(time.Millisecond))
	return err
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
	}
	return status.FromContextError(cause).Err()
}

// serve runs one session: Hello and Welcome, then messages until the stream ends.
func (s *Server) serve(ctx context.Context, stream wardv1.AgentService_ConnectServer,
	caller identity.ID, sess *session) error {
	hello, err := s.recvHello(stream, sess)
	if err != nil {
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

	s.sessions.add(sess)
	defer s.sessions.remove(sess)
	defer sess.end()
	if ctx.Err() != nil {
		return ctx.Err() // shutting down
	}
	s.cfg.Metrics.AgentConnected(caller.Tenant)
	defer s.cfg.Metrics.AgentDisconnected(caller.Tenant)

	acked, err := s.welcome(ctx, sess, caller, host)
	if err != nil {
		return err
	}
	sess.markReady(s.sessions)
	if s.cfg.Observer != nil {
		octx, cancel := s.observerContext(ctx)
		s.cfg.Observer.Connected(octx, caller.Tenant, caller.Name, hello.GetHello())
		cancel()
	}

	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}

		var dup bool
		acked, dup, err = s.handle(ctx, caller, sess, m, acked)
		if ctx.Err() != nil {
			return ctx.Err() // the handler has already answered
		}
		if err != nil {
			return s.refuse(caller, err)
		}
		if err := sess.send(ackResponse(acked)); err != nil {
			return err
		}
		if !dup && s.cfg.Observer != nil {
			octx, cancel := s.observerContext(ctx)
			s.cfg.Observer.Committed(octx, caller.Tenant, caller.Name, m)
			cancel()
		}
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
// Welcome. It returns the agent's acknowledged sequence number.
func (s *Server) welcome(ctx context.Context, sess *session, caller identity.ID,
	host *store.HostFacts) (uint64, error) {
	now := s.clock()
	wasOnline := false
	a, err := s.cfg.Store.UpdateAgent(ctx, caller.Name, func(a *store.Agent) error {
		if a.Revoked {
			return errRevoked
		}
		wasOnline = a.Online
		if host != nil {
			a.Host = *host
		}
		a.LastSeen = now
		a.Online = true
		return nil
	})
	if errors.Is(err, errRevoked) {
		return 0, status.Error(codes.PermissionDenied, "agent revoked")
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
		},
	}})
	if err != nil {
		return 0, err
	}
	return a.AckedSeq, nil
}

// handle validates, rate-limits and commits one sequenced message and returns the new
// acknowledged sequence number and whether m was a duplicate. Duplicates change nothing
// and are acknowledged again.
func (s *Server) handle(ctx context.Context, caller identity.ID, sess *session,
	m *wardv1.ConnectRequest, acked uint64) (uint64, bool, error) {
	if err := validate(m); err != nil {
		return acked, false, err
	}
	if !sess.limiter.Allow() {
		return acked, false, errRate
	}
	if err := s.checkOwnership(ctx, caller, m); err != nil {
		return acked, false, err
	}

	body, err := proto.Marshal(m)
	if err != nil {
		return acked, false, fmt.Errorf("marshal message: %w", err)
	}
	typ := messageType(m)
	dup, err := s.cfg.Store.CommitMessage(ctx, store.Message{
		Tenant:     caller.Tenant,
		Agent:      caller.Name,
		Seq:        m.GetSeq(),
		Type:       typ,
		CreatedAt:  m.GetCreatedAt().AsTime(),
		ReceivedAt: s.clock(),
		Body:       body,
	})
	if err != nil {
		return acked, false, &storeError{err: err}
	}

	s.cfg.Metrics.Message(typ)
	s.log.Debug("agent message", logkey.Agent, caller.Name, logkey.Seq, m.GetSeq(),
		logkey.MessageType, typ, "duplicate", dup)
	if !dup && m.GetSeq() > acked {
		acked = m.GetSeq()
	}
	return acked, dup, nil
}

// checkOwnership refuses a message whose body names another tenant, or reports on a
// command addressed to another agent. A command id the store does not know is let through
// with a warning: refusing it would make the agent resend it forever.
func (s *Server) checkOwnership(ctx context.Context, caller identity.ID,
	m *wardv1.ConnectRequest) error {
	var commandID string
	switch b := m.GetBody().(type) {
	case *wardv1.ConnectRequest_WitnessSignature:
		if b.WitnessSignature.GetTenant() != caller.Tenant {
			return fmt.Errorf("%w: witness signature for tenant %q", errPermission,
				b.WitnessSignature.GetTenant())
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
	attrs := []any{logkey.Agent, caller.Name, logkey.Tenant, caller.Tenant, logkey.Error, err}
	switch {
	case errors.Is(err, errInvalid):
		s.cfg.Metrics.StreamClosed("invalid")
		s.log.Warn("agent message refused", append(attrs, logkey.Reason, "invalid")...)
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, errRate):
		s.cfg.Metrics.StreamClosed("rate")
		s.log.Warn("agent message refused", append(attrs, logkey.Reason, "rate")...)
		return status.Error(codes.ResourceExhausted, "message rate exceeded")
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
