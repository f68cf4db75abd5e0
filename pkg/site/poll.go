package site

import (
	"fmt"
	"net/netip"
	"time"
)

// Polling bounds.
const (
	// DefaultPollInterval is the time between two polls of a device when none is set.
	DefaultPollInterval = time.Minute
	// MinPollInterval is the shortest poll interval a site may ask for.
	MinPollInterval = 10 * time.Second
	// MaxPollInterval is the longest: a device down longer than a few polls of it must
	// still become an incident within the hour.
	MaxPollInterval = 15 * time.Minute
	// MaxPollTargets is the most devices one collector polls.
	MaxPollTargets = 4096
	// maxDeviceID bounds a target's device id.
	maxDeviceID = 128
)

// Poll is the SNMP polling of a site's agentless devices (switches, firewalls, UPS, NAS,
// hypervisors): the collector asks each target for its uptime and interface counters on
// every interval, with the site's SNMP credentials, within its probe rate.
type Poll struct {
	// Interval between two polls of a device; zero means DefaultPollInterval. The
	// collector spreads the polls over the interval (jitter).
	Interval Duration `json:"interval,omitempty"`
	// Targets are the devices to poll. The controller sets them for each collector from
	// its inventory; a target outside the scanned subnets, in a passive-only subnet or
	// excluded is never polled.
	Targets []PollTarget `json:"targets,omitempty"`
}

// PollTarget is one device to poll.
type PollTarget struct {
	// Device is the device's inventory id ("mac:..." or "ip:..."), echoed in the reports.
	Device string `json:"device"`
	// Address is the address to poll.
	Address string `json:"address"`
}

// Addr returns the target's address; the zero Addr when it is invalid (Validate refuses
// such a configuration).
func (t PollTarget) Addr() netip.Addr {
	a, _ := netip.ParseAddr(t.Address)
	return a
}

// validate checks the interval (Normalize has run) and every target.
func (p Poll) validate() []error {
	var errs []error
	if d := time.Duration(p.Interval); d < MinPollInterval || d > MaxPollInterval {
		errs = append(errs, fmt.Errorf("poll.interval %s: want %s to %s", d, MinPollInterval,
			MaxPollInterval))
	}
	if len(p.Targets) > MaxPollTargets {
		errs = append(errs, fmt.Errorf("poll.targets: %d targets; at most %d",
			len(p.Targets), MaxPollTargets))
		return errs
	}
	seen := make(map[string]bool, len(p.Targets))
	for i, t := range p.Targets {
		switch {
		case t.Device == "" || len(t.Device) > maxDeviceID:
			errs = append(errs, fmt.Errorf("poll.targets[%d]: device id empty or longer "+
				"than %d bytes", i, maxDeviceID))
		case seen[t.Device]:
			errs = append(errs, fmt.Errorf("poll.targets[%d]: device %q listed twice", i,
				t.Device))
		}
		seen[t.Device] = true
		if _, err := netip.ParseAddr(t.Address); err != nil {
			errs = append(errs, fmt.Errorf("poll.targets[%d]: address %q is not an IP "+
				"address", i, t.Address))
		}
	}
	return errs
}

// PollTargets returns the targets the collector may poll: those whose address it may
// probe (see MayProbe). The others are left out, whatever the controller asked.
func (c *Config) PollTargets() []PollTarget {
	var out []PollTarget
	for _, t := range c.Poll.Targets {
		if a := t.Addr(); a.IsValid() && c.MayProbe(a) {
			out = append(out, t)
		}
	}
	return out
}

// WithoutTargets returns a copy of c without poll targets: what an operator sets and
// what decides a scan, as opposed to the controller's per-collector target list.
func (c Config) WithoutTargets() Config {
	c.Poll.Targets = nil
	return c
}
