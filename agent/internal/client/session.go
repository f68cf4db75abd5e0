package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/agent/internal/backoff"
	"github.com/wardsec/ward/agent/internal/spool"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// sendBatch is how many spooled messages the sender reads at a time.
const sendBatch = 64

// poisonRefusals is how many times in a row the controller may refuse the same message as
// invalid before the agent drops it, so that one bad message cannot block every later one.
const poisonRefusals = 3

// errNoWelcome ends a session whose controller did not answer the Hello properly.
var errNoWelcome = errors.New("controller sent no welcome")

// connectLoop runs sessions one after another until ctx ends, waiting a backoff delay
// between them. It logs on change only: the first failure of a kind, not every retry.
// redial (the connection's ResetConnectBackoff) runs after each delay, so that the next
// session dials at once: otherwise it could fail at once while the connection sat out a
// backoff of its own, and the two would compound (a 10 s outage could cost a minute).
func (c *Client) connectLoop(ctx context.Context, api wardv1.AgentServiceClient,
	redial func()) error {
	b := &backoff.Backoff{Min: c.cfg.MinBackoff, Max: c.cfg.MaxBackoff}
	lastKind := "" // the code of the last failure; a change of code is logged
	var poison poisonTracker

	for {
		began := c.now()
		welcomed, err := c.session(ctx, api)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, spool.ErrClosed) {
			return err
		}

		if welcomed && c.now().Sub(began) >= c.cfg.StableAfter {
			b.Reset()
		}
		if err := poison.observe(c, err); err != nil {
			return err
		}
		reason, refused := describe(err)
		kind := status.Code(err).String()
		wait := b.Next()
		if refused {
			wait = b.Slow()
		}

		switch {
		case refused && kind != lastKind:
			c.log.Error("controller refused this agent; it may have been revoked; "+
				"retrying slowly", logkey.Reason, reason,
				logkey.Backoff, wait.Round(time.Millisecond).String())
		case welcomed:
			c.log.Warn("disconnected from controller", logkey.Reason, reason,
				logkey.Backoff, wait.Round(time.Millisecond).String())
		case kind != lastKind:
			c.log.Warn("cannot reach controller; reconnecting", logkey.Addr, c.cfg.Addr,
				logkey.Reason, reason, logkey.Backoff, wait.Round(time.Millisecond).String())
		default:
			c.log.Debug("reconnecting", logkey.Reason, reason, logkey.Attempt, b.Attempts(),
				logkey.Backoff, wait.Round(time.Millisecond).String())
		}
		lastKind = kind
		if welcomed && !refused {
			lastKind = ""
		}

		if err := sleep(ctx, wait); err != nil {
			return nil
		}
		redial()
	}
}

// describe returns a short reason for a session's end and whether the controller refused
// the agent itself (revoked, or its certificate not accepted), which retrying soon cannot
// fix.
func describe(err error) (reason string, refused bool) {
	if err == nil {
		return "stream closed by controller", false
	}
	st, ok := status.FromError(err)
	if !ok {
		return err.Error(), false
	}
	switch st.Code() {
	case codes.PermissionDenied, codes.Unauthenticated:
		return st.Code().String() + ": " + st.Message(), true
	}
	msg := st.Message()
	if strings.Contains(msg, "remote error: tls:") {
		return "handshake refused: " + msg, true
	}
	return st.Code().String() + ": " + msg, false
}

// session runs one Connect stream. It reports whether the controller welcomed the agent,
// and the error that ended the stream.
func (c *Client) session(ctx context.Context, api wardv1.AgentServiceClient) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	stream, err := api.Connect(ctx)
	if err != nil {
		return false, err
	}
	welcome, err := c.handshake(ctx, cancel, stream)
	if err != nil {
		return false, err
	}

	if err := c.cfg.Spool.Ack(welcome.GetAckedSeq()); err != nil {
		return true, err
	}
	c.applyWelcome(welcome)
	c.log.Info("connected to controller", logkey.Addr, c.cfg.Addr,
		logkey.Agent, welcome.GetAgentId(), logkey.Seq, welcome.GetAckedSeq(),
		"resending", c.cfg.Spool.State().Messages,
		"heartbeat_interval", time.Duration(c.interval.Load()).String())

	// Whichever loop ends first cancels the stream, which ends the other.
	var g errgroup.Group
	g.Go(func() error { defer cancel(); return c.sendLoop(ctx, stream) })
	g.Go(func() error { defer cancel(); return c.recvLoop(ctx, stream) })
	return true, g.Wait()
}

// handshake sends the Hello and waits up to CallTimeout for the Welcome.
func (c *Client) handshake(ctx context.Context, cancel context.CancelFunc,
	stream wardv1.AgentService_ConnectClient) (*wardv1.Welcome, error) {
	hello := &wardv1.ConnectRequest{
		CreatedAt: timestamppb.New(c.now()),
		Body: &wardv1.ConnectRequest_Hello{Hello: &wardv1.Hello{
			Host:            c.cfg.Facts(),
			Spool:           spoolState(c.cfg.Spool.State()),
			BaselineVersion: c.baselineVersion(),
		}},
	}
	if err := stream.Send(hello); err != nil {
		return nil, recvErr(stream, err)
	}

	timer := time.AfterFunc(c.cfg.CallTimeout, cancel)
	defer timer.Stop()
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	welcome := resp.GetWelcome()
	if welcome == nil {
		return nil, fmt.Errorf("%w: got %T", errNoWelcome, resp.GetBody())
	}
	if id := welcome.GetAgentId(); id != "" && id != c.cfg.Info.AgentID {
		return nil, fmt.Errorf("%w: welcome names agent %q", errNoWelcome, id)
	}
	return welcome, nil
}

// baselineVersion is the version the Hello reports.
func (c *Client) baselineVersion() string {
	if c.cfg.BaselineVersion == nil {
		return ""
	}
	return c.cfg.BaselineVersion()
}

// recvErr returns the stream's status after a failed Send: Send reports only io.EOF, the
// reason is in Recv.
func recvErr(stream wardv1.AgentService_ConnectClient, err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	if _, rerr := stream.Recv(); rerr != nil && !errors.Is(rerr, io.EOF) {
		return rerr
	}
	return err
}

// paceShare is the share of the controller's announced message rate and burst that the
// agent uses, leaving room for the two clocks to disagree: the controller's allowance of
// an agent carries over from one stream to the next, the agent's pacer starts afresh.
const paceShare = 0.8

func (c *Client) applyWelcome(w *wardv1.Welcome) {
	c.pace.Store(pacer(w.GetMessageRate(), w.GetMessageBurst()))
	d := w.GetHeartbeatInterval().AsDuration()
	if w.GetHeartbeatInterval() == nil || d <= 0 {
		return
	}
	if old := time.Duration(c.interval.Swap(int64(d))); old != d {
		select {
		case c.intervalChange <- struct{}{}:
		default:
		}
	}
}

// pacer returns the limiter that keeps the agent under the controller's announced rate,
// or nil when none was announced (an older controller).
func pacer(perSecond float64, burst uint32) *rate.Limiter {
	if perSecond <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(perSecond*paceShare),
		max(1, int(float64(burst)*paceShare)))
}

// sendLoop sends every pending message in seq order, then new ones as they are appended,
// no faster than the controller accepts: a spool that filled while the controller was
// away is resent at the announced rate instead of having its stream ended for flooding.
func (c *Client) sendLoop(ctx context.Context, stream wardv1.AgentService_ConnectClient) error {
	var last uint64 // the spool skips everything acknowledged on its own
	for {
		msgs, err := c.cfg.Spool.Pending(last, sendBatch)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if l := c.pace.Load(); l != nil {
				if err := l.Wait(ctx); err != nil {
					return err
				}
			}
			if err := c.send(stream, m); err != nil {
				return err
			}
			last = m.Seq
		}
		if len(msgs) > 0 {
			continue
		}

		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.cfg.Spool.Appended():
		}
	}
}

func (c *Client) send(stream wardv1.AgentService_ConnectClient, m spool.Message) error {
	req := &wardv1.ConnectRequest{}
	if err := proto.Unmarshal(m.Payload, req); err != nil {
		// Not sendable, ever: skip it rather than block everything behind it.
		c.log.Error("spooled message unreadable; skipped", logkey.Seq, m.Seq,
			logkey.MessageType, m.Kind.String(), logkey.Error, err)
		return nil
	}
	req.Seq = m.Seq
	if err := stream.Send(req); err != nil {
		return recvErr(stream, err)
	}
	c.log.Debug("message sent", logkey.Seq, m.Seq, logkey.MessageType, m.Kind.String())
	return nil
}

// recvLoop applies acknowledgements and dispatches what the controller pushes.
func (c *Client) recvLoop(ctx context.Context, stream wardv1.AgentService_ConnectClient) error {
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}

		switch b := resp.GetBody().(type) {
		case *wardv1.ConnectResponse_Ack:
			if err := c.cfg.Spool.Ack(b.Ack.GetUpToSeq()); err != nil {
				return err
			}
		case *wardv1.ConnectResponse_RenewCertificate:
			c.requestRenewal(b.RenewCertificate.GetReason(), nil)
		case *wardv1.ConnectResponse_Command:
			c.handleCommand(b.Command)
		case *wardv1.ConnectResponse_BaselineUpdate:
			c.handleBaseline(b.BaselineUpdate)
		case *wardv1.ConnectResponse_Checkpoint:
			c.handleCheckpoint(b.Checkpoint)
		case *wardv1.ConnectResponse_SiteConfig:
			c.handleSiteConfig(b.SiteConfig)
		case *wardv1.ConnectResponse_Welcome:
			c.log.Warn("unexpected second welcome; ignored")
		default:
			c.log.Warn("unknown message from controller; ignored",
				logkey.MessageType, fmt.Sprintf("%T", b))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// poisonTracker drops a spooled message that the controller keeps refusing as invalid.
// The controller handles messages in order and acknowledges each, so the one it refused
// is the oldest unacknowledged message.
type poisonTracker struct {
	seq   uint64 // oldest pending seq at the last InvalidArgument refusal
	count int    // consecutive refusals while it was the oldest
}

// observe notes how a session ended and drops the oldest message after poisonRefusals
// refusals of it in a row. It returns an error only when the spool is closed.
func (p *poisonTracker) observe(c *Client, err error) error {
	if status.Code(err) != codes.InvalidArgument {
		p.count = 0
		return nil
	}
	oldest := c.cfg.Spool.State().OldestSeq
	if oldest == 0 {
		return nil
	}
	if oldest != p.seq {
		p.seq, p.count = oldest, 0
	}
	p.count++
	if p.count < poisonRefusals {
		return nil
	}

	c.log.Error("controller keeps refusing a message as invalid; dropped it so the rest "+
		"can be delivered", logkey.Seq, oldest, logkey.Reason, status.Convert(err).Message(),
		logkey.Count, p.count)
	p.count = 0
	if err := c.cfg.Spool.Ack(oldest); errors.Is(err, spool.ErrClosed) {
		return err
	} else if err != nil {
		c.log.Error("drop refused message", logkey.Seq, oldest, logkey.Error, err)
	}
	return nil
}
