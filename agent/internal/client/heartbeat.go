package client

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/agent/internal/spool"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// heartbeatLoop spools a heartbeat every interval, connected or not: while the controller
// is unreachable they queue up (and are the first to go when the spool fills), so the
// controller can later see when the agent was alive. Failures are logged when they start
// and when they stop, not at every beat.
func (c *Client) heartbeatLoop(ctx context.Context) error {
	timer := time.NewTimer(time.Duration(c.interval.Load()))
	defer timer.Stop()
	failing := false

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.intervalChange:
			timer.Reset(time.Duration(c.interval.Load()))
			continue
		case <-timer.C:
		}
		timer.Reset(time.Duration(c.interval.Load()))

		_, err := c.Enqueue(c.heartbeat())
		switch {
		case errors.Is(err, spool.ErrClosed):
			return err
		case err != nil && !failing:
			failing = true
			c.log.Warn("heartbeat not spooled; will retry at the next beat",
				logkey.Error, err)
		case err == nil && failing:
			failing = false
			c.log.Info("heartbeats spooled again")
		}
	}
}

func (c *Client) heartbeat() *wardv1.ConnectRequest {
	return &wardv1.ConnectRequest{
		Body: &wardv1.ConnectRequest_Heartbeat{Heartbeat: &wardv1.Heartbeat{
			UptimeSeconds: uint64(c.now().Sub(c.start) / time.Second),
			Spool:         spoolState(c.cfg.Spool.State()),
			CertNotAfter:  timestamppb.New(c.creds.leaf().NotAfter),
		}},
	}
}
