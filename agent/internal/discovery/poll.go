package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/agent/internal/discovery/snmp"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/site"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Bounds of the health polls.
const (
	// packetsPerPoll is about how many packets one health poll sends (a get and four
	// table walks, with retries on loss), for spacing polls within the probe rate.
	packetsPerPoll = 12
	// pollParallel is how many devices are polled at once.
	pollParallel = 8
	// maxInterfaces bounds the interfaces of one poll on the wire.
	maxInterfaces = 512
	// pollJitter is the largest random share of the interval a round waits before it
	// starts, so that collectors and devices are not polled in lockstep.
	pollJitter = 0.1
)

// runPolls polls the site's poll targets every poll interval until ctx ends. It reads
// the site configuration before every round, so new targets apply at the next round.
func (c *Collector) runPolls(ctx context.Context) {
	for ctx.Err() == nil {
		wait := c.cfg.RetryEvery
		st, err := site.Load(c.cfg.SitePath)
		if err == nil {
			interval := time.Duration(st.Poll.Interval)
			wait = interval
			if _, err := c.PollRound(ctx, st); err != nil && ctx.Err() == nil {
				c.log.Warn("device polls not reported", logkey.Error, err.Error())
			}
			wait += time.Duration(rand.Float64() * pollJitter * float64(interval))
		}
		_ = sleepCtx(ctx, wait) // ctx ending ends the loop
	}
}

// PollRound polls each target of st once (see site.Config.PollTargets: never one outside
// the scanned subnets, on a passive-only subnet or excluded), spreading the polls over
// the first half of the poll interval and within the probe rate, and enqueues the results
// as one DevicePollReport. It returns the report, or nil when there was nothing to poll.
func (c *Collector) PollRound(ctx context.Context, st *site.Config) (
	*wardv1.DevicePollReport, error) {
	targets := st.PollTargets()
	if len(targets) == 0 {
		return nil, nil
	}
	if len(st.SNMP) == 0 {
		c.log.Warn("poll targets but no SNMP credentials in the site configuration",
			logkey.Count, len(targets))
		return nil, nil
	}
	hp := c.healthPoller(st.SNMP)
	spacing := pollSpacing(len(targets), time.Duration(st.Poll.Interval), st.ProbeRate)

	polls := make([]*wardv1.DevicePoll, len(targets))
	sem := make(chan struct{}, pollParallel)
	var wg sync.WaitGroup
	for i, t := range targets {
		if i > 0 && sleepCtx(ctx, spacing) != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			polls[i] = c.pollOne(ctx, hp, t)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	r := &wardv1.DevicePollReport{Tenant: c.cfg.Tenant, Polls: polls}
	if _, err := c.cfg.Sink.Enqueue(&wardv1.ConnectRequest{
		Body: &wardv1.ConnectRequest_DevicePollReport{DevicePollReport: r}}); err != nil {
		return nil, fmt.Errorf("enqueue device poll report: %w", err)
	}
	up := 0
	for _, p := range polls {
		if p.GetReachable() {
			up++
		}
	}
	c.log.Info("devices polled", logkey.Count, len(polls), "reachable", up)
	return r, nil
}

// pollOne polls one target and converts what it found.
func (c *Collector) pollOne(ctx context.Context, hp *snmp.HealthPoller,
	t site.PollTarget) *wardv1.DevicePoll {
	h, err := hp.Health(ctx, t.Addr())
	p := &wardv1.DevicePoll{DeviceId: t.Device, Address: t.Addr().String(),
		PolledAt: timestamppb.Now()}
	if err != nil {
		p.Error = text(pollError(err), maxText)
		c.log.Info("device did not answer its poll", logkey.Device, t.Device,
			logkey.Addr, p.Address, logkey.Reason, p.Error)
		return p
	}
	p.Reachable, p.UptimeCentiseconds, p.SysName = true, h.Uptime, text(h.SysName, maxID)
	for i, ifc := range h.Interfaces {
		if i == maxInterfaces {
			break
		}
		p.Interfaces = append(p.Interfaces, &wardv1.InterfaceCounters{Index: ifc.Index,
			Name: text(ifc.Name, maxID), OperStatus: ifc.OperStatus, InErrors: ifc.InErrors,
			OutErrors: ifc.OutErrors})
	}
	return p
}

// pollError says why a device did not answer in words for the operator. gosnmp's own
// errors name only the request and the address.
func pollError(err error) string {
	if errors.Is(err, snmp.ErrNoAnswer) {
		return "no answer with any credential (timeout after retries, or refused): " +
			err.Error()
	}
	return err.Error()
}

// healthPoller returns the poller for creds, kept across rounds (it remembers which
// credential each device answered) until the credentials change.
func (c *Collector) healthPoller(creds []site.SNMPCredential) *snmp.HealthPoller {
	c.pollMu.Lock()
	defer c.pollMu.Unlock()
	if c.health == nil || !sameCreds(c.health.Creds, creds) {
		c.health = &snmp.HealthPoller{Creds: creds, Timeout: c.cfg.PollTimeout}
	}
	return c.health
}

func sameCreds(a, b []site.SNMPCredential) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// pollSpacing is the time between the starts of two polls of a round: the n polls are
// spread over half the interval, and never closer than the probe rate allows.
func pollSpacing(n int, interval time.Duration, probeRate int) time.Duration {
	if n <= 1 {
		return 0
	}
	spread := interval / 2 / time.Duration(n)
	if probeRate <= 0 {
		probeRate = site.DefaultProbeRate
	}
	byRate := time.Duration(packetsPerPoll) * time.Second / time.Duration(probeRate)
	return max(spread, byRate)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// logPollTargets is used by Run to say how many devices the site asks to poll.
func logPollTargets(log *slog.Logger, st *site.Config) {
	if n, all := len(st.PollTargets()), len(st.Poll.Targets); all > 0 {
		log.Info("devices to poll", logkey.Count, n, "skipped_untouchable", all-n,
			"interval", time.Duration(st.Poll.Interval))
	}
}
