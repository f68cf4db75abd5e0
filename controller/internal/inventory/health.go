package inventory

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wardsec/ward/controller/internal/agentapi"
	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/classify"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/site"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// DefaultDownAfter is how many polls in a row an agentless device may miss before its
// device-down incident opens (Config.DownAfter).
const DefaultDownAfter = 3

// Evidence record types of polled devices.
const (
	// TypeDeviceRestarted: subject: device id; actor: the collector; data: uptime before
	// and after, when it restarted.
	TypeDeviceRestarted = "device.restarted"
	// TypeDeviceInterfaceErrors: subject: device id; actor: the collector; data: the
	// interfaces whose error counters rose since the previous poll, and by how much.
	TypeDeviceInterfaceErrors = "device.interface_errors"
)

// DeviceDown describes an agentless device that stopped answering its polls.
type DeviceDown struct {
	Tenant    string
	Device    string // inventory id
	Collector string // agent id of the collector that polls it
	Address   string
	Failures  int       // polls in a row without an answer
	Since     time.Time // first poll without an answer
	Error     string    // why the last poll got no answer, without secrets
}

// DeviceIncidents opens and resolves device-down incidents (remediation.Engine implements
// it). Both methods return only once the decision is recorded as evidence; on an error
// nothing may be assumed done, and the inventory asks again at the next poll.
type DeviceIncidents interface {
	// DeviceDown opens the device's down incident, or finds the one already unresolved,
	// and returns its id.
	DeviceDown(ctx context.Context, d DeviceDown) (incidentID string, err error)
	// DeviceUp resolves the incident; nil when it is resolved already.
	DeviceUp(ctx context.Context, tenant, incidentID, reason string) error
}

// PollTargets returns the devices the tenant's collector is to poll over SNMP: its
// agentless devices watched by SNMP (those it reported last), each at its first address
// the site lets the collector probe (never outside the scanned subnets, on a passive-only
// subnet or excluded), ordered by device id, at most site.MaxPollTargets. None without a
// site configuration.
func (inv *Inventory) PollTargets(ctx context.Context, tenant, collector string) (
	[]site.PollTarget, error) {
	sc, err := inv.st.GetSiteConfig(ctx, tenant)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("poll targets: %w", err)
	}
	cfg := sc.Config.WithoutTargets()
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("poll targets: stored site configuration: %w", err)
	}
	devices, err := inv.st.ListDevices(ctx, tenant,
		store.DeviceFilter{State: store.DeviceAgentless})
	if err != nil {
		return nil, fmt.Errorf("poll targets: %w", err)
	}

	var out []site.PollTarget
	for _, d := range devices {
		if d.Strategy != string(classify.StrategySNMP) || d.Collector != collector {
			continue
		}
		for _, a := range d.Addresses {
			if ip, err := netip.ParseAddr(a); err == nil && cfg.MayProbe(ip) {
				out = append(out, site.PollTarget{Device: d.ID, Address: ip.String()})
				break
			}
		}
		if len(out) == site.MaxPollTargets {
			break
		}
	}
	return out, nil
}

// ApplyPolls applies one stored device poll report of a collector to the health of the
// devices it polled, in order, and moves the collector's poll cursor to seq. A poll of a
// device not among the collector's PollTargets (at the address given) is ignored, counted
// and logged; a poll not newer than the device's last is skipped (a report read again).
// An uptime that went backwards is recorded as a restart, error counters that rose as
// interface errors; DownAfter polls in a row without an answer open a device-down
// incident and an answer resolves it. It returns once those records are appended.
func (inv *Inventory) ApplyPolls(ctx context.Context, tenant, collector string, seq uint64,
	r *wardv1.DevicePollReport) error {
	targets, err := inv.PollTargets(ctx, tenant, collector)
	if err != nil {
		return err
	}
	given := make(map[string]string, len(targets))
	for _, t := range targets {
		given[t.Device] = t.Address
	}

	ignored := 0
	for _, p := range r.GetPolls() {
		if addr, ok := given[p.GetDeviceId()]; !ok || addr != p.GetAddress() {
			ignored++
			continue
		}
		if err := inv.applyPoll(ctx, tenant, collector, p); err != nil {
			return fmt.Errorf("apply poll of %s: %w", p.GetDeviceId(), err)
		}
	}
	if ignored > 0 {
		inv.cfg.Metrics.PollsIgnored(ignored)
		inv.log.Warn("device polls ignored: devices not given to the collector",
			logkey.Tenant, tenant, logkey.Agent, collector, logkey.Seq, seq,
			logkey.Count, ignored)
	}
	return inv.st.SetPollCursor(ctx, tenant, collector, seq)
}

// pollOutcome is what one poll changed that needs a record or an incident.
type pollOutcome struct {
	stale     bool   // not newer than the last poll applied
	restarted bool   // the uptime went backwards
	uptimeWas uint64 // centiseconds, before a restart
	newErrors []store.InterfaceHealth
	down, up  bool // the down threshold is reached; the device answered
}

// applyPoll applies p to its device: the health is computed from the stored device, the
// records and incident decisions it calls for are made, and then the health is stored.
// A failure before the store leaves the device as it was, so the poll is applied again
// when the report is read again.
func (inv *Inventory) applyPoll(ctx context.Context, tenant, collector string,
	p *wardv1.DevicePoll) error {
	d, err := inv.st.GetDevice(ctx, tenant, p.GetDeviceId())
	if err != nil {
		return err
	}
	var h, before store.DeviceHealth
	if d.Health != nil {
		h, before = *d.Health, *d.Health
	}
	out := updateHealth(&h, p, inv.downAfter())
	if out.stale {
		return nil
	}

	if err := inv.recordHealth(ctx, d, collector, h, out); err != nil {
		return err
	}
	if err := inv.decideIncident(ctx, d, collector, &h, out); err != nil {
		return err
	}

	_, err = inv.st.UpdateDevice(ctx, tenant, d.ID, nil,
		func(cur *store.Device, found bool, _ []store.Device) error {
			if !found {
				return errStale
			}
			if cur.Health != nil && !cur.Health.LastPoll.Equal(before.LastPoll) {
				return errStale // applied meanwhile
			}
			cur.Health = &h
			return nil
		})
	if errors.Is(err, errStale) {
		return nil
	}
	return err
}

func (inv *Inventory) downAfter() int {
	if inv.cfg.DownAfter > 0 {
		return inv.cfg.DownAfter
	}
	return DefaultDownAfter
}

// recordHealth appends the restart and interface error records of one poll.
func (inv *Inventory) recordHealth(ctx context.Context, d store.Device, collector string,
	h store.DeviceHealth, out pollOutcome) error {
	actor := evidence.Actor{Kind: evidence.ActorAgent, ID: collector}
	if out.restarted {
		if _, err := inv.cfg.Recorder.Record(ctx, evidence.Entry{Tenant: d.Tenant,
			Type: TypeDeviceRestarted, Actor: actor, Subject: d.ID,
			Data: map[string]any{"uptime_before_s": out.uptimeWas / 100,
				"uptime_after_s": h.UptimeCentis / 100,
				"restarted_at":   h.LastRestart.UTC().Format(time.RFC3339)}}); err != nil {
			return fmt.Errorf("record restart of %s: %w", d.ID, err)
		}
		inv.log.Warn("device restarted", logkey.Tenant, d.Tenant, logkey.Device, d.ID,
			logkey.Agent, collector, "uptime_s", h.UptimeCentis/100)
	}
	if len(out.newErrors) == 0 {
		return nil
	}
	ifs := make([]map[string]any, 0, len(out.newErrors))
	total := uint64(0)
	for _, ifc := range out.newErrors {
		ifs = append(ifs, map[string]any{"index": ifc.Index, "name": ifc.Name,
			"new_errors": ifc.NewErrors})
		total += ifc.NewErrors
	}
	if _, err := inv.cfg.Recorder.Record(ctx, evidence.Entry{Tenant: d.Tenant,
		Type: TypeDeviceInterfaceErrors, Actor: actor, Subject: d.ID,
		Data: map[string]any{"interfaces": ifs, "new_errors": total}}); err != nil {
		return fmt.Errorf("record interface errors of %s: %w", d.ID, err)
	}
	inv.log.Warn("device interface errors", logkey.Tenant, d.Tenant, logkey.Device, d.ID,
		logkey.Agent, collector, logkey.Count, total)
	return nil
}

// decideIncident opens the device-down incident when the threshold is reached and none
// is open, and resolves it when the device answers; h.Incident follows.
func (inv *Inventory) decideIncident(ctx context.Context, d store.Device, collector string,
	h *store.DeviceHealth, out pollOutcome) error {
	if inv.cfg.Incidents == nil {
		return nil
	}
	switch {
	case out.down && h.Incident == "":
		addr := ""
		if len(d.Addresses) > 0 {
			addr = d.Addresses[0]
		}
		id, err := inv.cfg.Incidents.DeviceDown(ctx, DeviceDown{Tenant: d.Tenant,
			Device: d.ID, Collector: collector, Address: addr,
			Failures: h.ConsecutiveFailures, Since: h.Since, Error: h.Error})
		if err != nil {
			return fmt.Errorf("device down: %w", err)
		}
		h.Incident = id
	case out.up && h.Incident != "":
		if err := inv.cfg.Incidents.DeviceUp(ctx, d.Tenant, h.Incident,
			"device answered its poll again"); err != nil {
			return fmt.Errorf("device up: %w", err)
		}
		h.Incident = ""
	}
	return nil
}

// updateHealth applies poll p to h and says what changed. downAfter is the number of
// failed polls in a row that makes the device down.
func updateHealth(h *store.DeviceHealth, p *wardv1.DevicePoll, downAfter int) pollOutcome {
	at := p.GetPolledAt().AsTime().UTC()
	if !at.After(h.LastPoll) {
		return pollOutcome{stale: true}
	}
	first := h.LastPoll.IsZero()
	var out pollOutcome
	if !p.GetReachable() {
		if h.Reachable || first {
			h.Since = at
		}
		h.Reachable, h.LastPoll, h.Error = false, at, clip(p.GetError())
		h.ConsecutiveFailures++
		out.down = h.ConsecutiveFailures >= downAfter
		return out
	}

	if !h.Reachable || first {
		h.Since = at
	}
	uptime := p.GetUptimeCentiseconds()
	restarted := restartedBetween(h, uptime, at)
	if restarted {
		out.restarted, out.uptimeWas = true, h.UptimeCentis
		h.LastRestart = at.Add(-time.Duration(uptime) * 10 * time.Millisecond)
	}
	h.Interfaces, out.newErrors = interfaceHealth(h.Interfaces, p.GetInterfaces(),
		restarted)
	h.Reachable, h.LastPoll, h.LastAnswer, h.Error = true, at, at, ""
	h.UptimeCentis, h.ConsecutiveFailures = uptime, 0
	out.up = true
	return out
}

// maxTicks is one past the largest sysUpTime: TimeTicks are 32-bit and wrap after
// about 497 days.
const maxTicks = 1 << 32

// restartedBetween reports whether the device restarted since h's last answer: its uptime
// went backwards, and not because the 32-bit TimeTicks wrapped in the time between.
func restartedBetween(h *store.DeviceHealth, uptime uint64, at time.Time) bool {
	if h.LastAnswer.IsZero() || uptime >= h.UptimeCentis {
		return false
	}
	elapsed := uint64(max(at.Sub(h.LastAnswer), 0) / (10 * time.Millisecond))
	return h.UptimeCentis+elapsed < maxTicks
}

// interfaceHealth converts the polled interfaces and computes each one's new errors
// against the previous poll (an interface seen for the first time has none; after a
// restart the counters started again from zero). It also returns the interfaces with new
// errors.
func interfaceHealth(prev []store.InterfaceHealth, polled []*wardv1.InterfaceCounters,
	restarted bool) ([]store.InterfaceHealth, []store.InterfaceHealth) {
	old := make(map[uint32]store.InterfaceHealth, len(prev))
	for _, ifc := range prev {
		old[ifc.Index] = ifc
	}
	out := make([]store.InterfaceHealth, 0, len(polled))
	var rose []store.InterfaceHealth
	for _, c := range polled {
		ifc := store.InterfaceHealth{Index: c.GetIndex(), Name: clip(c.GetName()),
			Status: operStatus(c.GetOperStatus()), InErrors: c.GetInErrors(),
			OutErrors: c.GetOutErrors()}
		if o, ok := old[ifc.Index]; ok {
			if restarted {
				ifc.NewErrors = ifc.InErrors + ifc.OutErrors
			} else {
				ifc.NewErrors = counterIncrease(o.InErrors, ifc.InErrors) +
					counterIncrease(o.OutErrors, ifc.OutErrors)
			}
		}
		if ifc.NewErrors > 0 {
			rose = append(rose, ifc)
		}
		out = append(out, ifc)
	}
	return out, rose
}

// counterIncrease is how much a 32-bit counter rose from prev to cur, assuming it
// wrapped at most once when cur is lower. A value beyond 32 bits (not a Counter32) that
// went down counts as a reset to zero.
func counterIncrease(prev, cur uint64) uint64 {
	switch {
	case cur >= prev:
		return cur - prev
	case prev <= math.MaxUint32:
		return cur + (math.MaxUint32 - prev) + 1
	}
	return cur
}

// operStatus names IF-MIB's ifOperStatus values.
func operStatus(v uint32) string {
	names := []string{"", "up", "down", "testing", "unknown", "dormant", "not_present",
		"lower_layer_down"}
	if int(v) < len(names) {
		return names[v]
	}
	return "unknown"
}

// CatchUpPolls applies the collector's stored device poll reports after its poll cursor,
// in order: those stored but not applied (a crash, a store or evidence failure).
func (inv *Inventory) CatchUpPolls(ctx context.Context, tenant, collector string) error {
	after, err := inv.st.PollCursor(ctx, tenant, collector)
	if err != nil {
		return err
	}
	for {
		msgs, err := inv.st.ListMessages(ctx, tenant, collector, after, catchUpBatch)
		if err != nil || len(msgs) == 0 {
			return err
		}
		for _, m := range msgs {
			if m.Type != "device_poll_report" {
				continue
			}
			var req wardv1.ConnectRequest
			if err := proto.Unmarshal(m.Body, &req); err != nil {
				return fmt.Errorf("decode stored message %d: %w", m.Seq, err)
			}
			if err := inv.ApplyPolls(ctx, tenant, collector, m.Seq,
				req.GetDevicePollReport()); err != nil {
				return err
			}
		}
		// the other messages need nothing here: move past them, so that a collector
		// that sends no poll reports is not read from its first message at every connect
		after = msgs[len(msgs)-1].Seq
		if err := inv.st.SetPollCursor(ctx, tenant, collector, after); err != nil {
			return err
		}
	}
}

// Processor applies device poll reports before they are acknowledged: it implements
// agentapi.Processor. Reports stored but not applied (the controller stopped, the
// evidence log refused a record) are applied when the collector connects again (see
// Observer.Connected).
type Processor struct {
	Inventory *Inventory
}

var _ agentapi.Processor = Processor{}

// Process applies a committed device poll report, after any earlier one not applied yet.
func (p Processor) Process(ctx context.Context, tenant, agentID string,
	m *wardv1.ConnectRequest) error {
	r := m.GetDevicePollReport()
	if r == nil {
		return nil
	}
	inv := p.Inventory
	cur, err := inv.st.PollCursor(ctx, tenant, agentID)
	if err != nil {
		return err
	}
	if cur >= m.GetSeq() {
		return nil
	}
	return inv.CatchUpPolls(ctx, tenant, agentID)
}
