// Package site holds a clinic site's discovery configuration: which subnets the collector
// scans, which it only listens to, which addresses it never touches, the SNMP credentials
// it may use, how often it scans and how fast it may probe. The collector reads it and the
// controller stores and pushes it, so both sides share this one type and its validation.
//
// The configuration is JSON (collector.json in the agent's state directory):
//
//	{
//	  "subnets": ["10.20.0.0/24"],
//	  "passive_subnets": ["10.30.0.0/24"],
//	  "exclude": ["10.20.0.7", "10.20.0.128/28"],
//	  "snmp": [
//	    {"version": "v3", "user": "ward", "auth_protocol": "SHA",
//	     "auth_passphrase": "...", "priv_protocol": "AES", "priv_passphrase": "..."},
//	    {"version": "v2c", "community": "public"}
//	  ],
//	  "schedule": {"interval": "24h"},
//	  "probe_rate": 300,
//	  "interface": "eth0",
//	  "poll": {"interval": "60s", "targets": [{"device": "mac:...", "address": "10.20.0.2"}]}
//	}
//
// Passive subnets are never actively probed, even when they overlap a scanned subnet, and
// excluded addresses are neither probed nor reported. Poll targets are the agentless
// devices the controller asks this collector to poll over SNMP; the controller fills them
// in (an operator's configuration leaves them out).
package site

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"
)

// Defaults applied by Normalize for unset fields.
const (
	// DefaultInterval is the time between two scans when the schedule sets none.
	DefaultInterval = 24 * time.Hour
	// MinInterval is the shortest interval a schedule may ask for.
	MinInterval = time.Minute
	// DefaultProbeRate is the packet rate limit (per second) when none is set.
	DefaultProbeRate = 300
	// MaxProbeRate is the highest probe rate a site may ask for; clinical networks carry
	// fragile devices, so the limit stays well below what nmap could send.
	MaxProbeRate = 5000
	// MaxHosts is the most addresses the scanned subnets may hold together.
	MaxHosts = 1 << 16
)

// Config is one site's discovery configuration. The zero value is not valid: at least one
// subnet (scanned or passive) is required. Validate checks it; Normalize fills defaults.
type Config struct {
	// Subnets are scanned actively, in CIDR notation.
	Subnets []string `json:"subnets,omitempty"`
	// PassiveSubnets are only listened to (ARP, mDNS), never probed.
	PassiveSubnets []string `json:"passive_subnets,omitempty"`
	// Exclude lists addresses or CIDR ranges that are never probed nor reported.
	Exclude []string `json:"exclude,omitempty"`
	// SNMP lists the credentials to try, in order. v3 authPriv is preferred.
	SNMP []SNMPCredential `json:"snmp,omitempty"`
	// Schedule says when to scan.
	Schedule Schedule `json:"schedule"`
	// ProbeRate limits active probing, in packets per second (nmap --max-rate).
	// Zero means DefaultProbeRate.
	ProbeRate int `json:"probe_rate,omitempty"`
	// Interface is the network interface passive listening uses; empty means the
	// interface holding the default route's first scanned subnet.
	Interface string `json:"interface,omitempty"`
	// Ports overrides the TCP ports the active scan probes, in nmap syntax ("22,80,104").
	// Empty means the collector's clinic port list.
	Ports string `json:"ports,omitempty"`
	// Poll says which agentless devices the collector polls over SNMP, and how often.
	Poll Poll `json:"poll,omitzero"`
}

// Schedule says when the collector scans.
type Schedule struct {
	// Interval between the starts of two scans; zero means DefaultInterval.
	Interval Duration `json:"interval,omitempty"`
}

// Duration is a time.Duration written in JSON as a Go duration string ("24h", "90m").
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string like \"24h\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// Load reads and validates a configuration file. Unknown fields are an error, so a typo
// cannot silently turn a passive subnet into a scanned one.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load site config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("load site config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes, normalizes and validates a JSON configuration.
func Parse(b []byte) (*Config, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Normalize fills the defaults of unset fields. It does not validate.
func (c *Config) Normalize() {
	if c.Schedule.Interval == 0 {
		c.Schedule.Interval = Duration(DefaultInterval)
	}
	if c.ProbeRate == 0 {
		c.ProbeRate = DefaultProbeRate
	}
	if c.Poll.Interval == 0 {
		c.Poll.Interval = Duration(DefaultPollInterval)
	}
}

// Validate reports every problem of the configuration at once, joined. It expects
// Normalize to have run (a zero interval or rate is an error).
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(c.Subnets)+len(c.PassiveSubnets) == 0 {
		add("no subnets: set subnets or passive_subnets")
	}
	hosts := 0
	for _, s := range c.Subnets {
		p, err := parsePrefix(s)
		if err != nil {
			add("subnets: %w", err)
			continue
		}
		hosts += prefixSize(p)
	}
	if hosts > MaxHosts {
		add("subnets hold %d addresses; at most %d may be scanned", hosts, MaxHosts)
	}
	for _, s := range c.PassiveSubnets {
		if _, err := parsePrefix(s); err != nil {
			add("passive_subnets: %w", err)
		}
	}
	for _, s := range c.Exclude {
		if _, err := parseRange(s); err != nil {
			add("exclude: %w", err)
		}
	}
	for i, cred := range c.SNMP {
		if err := cred.Validate(); err != nil {
			add("snmp[%d]: %w", i, err)
		}
	}
	if d := time.Duration(c.Schedule.Interval); d < MinInterval {
		add("schedule.interval %s: at least %s", d, MinInterval)
	}
	if c.ProbeRate < 1 || c.ProbeRate > MaxProbeRate {
		add("probe_rate %d: want 1 to %d packets per second", c.ProbeRate, MaxProbeRate)
	}
	if c.Ports != "" && strings.ContainsFunc(c.Ports, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r == ',' || r == '-')
	}) {
		add("ports %q: want numbers, commas and ranges like \"22,80,8000-8100\"", c.Ports)
	}
	errs = append(errs, c.Poll.validate()...)
	return errors.Join(errs...)
}

// Warnings lists what is allowed but unwise, for the collector to log and the controller
// to show: SNMP v2c (a cleartext community) and v3 below authPriv.
func (c *Config) Warnings() []string {
	var w []string
	for i, cred := range c.SNMP {
		switch {
		case cred.Version == SNMPv2c:
			w = append(w, fmt.Sprintf("snmp[%d]: v2c sends its community in cleartext; "+
				"prefer v3 authPriv", i))
		case cred.PrivProtocol == "":
			w = append(w, fmt.Sprintf("snmp[%d]: v3 without privacy sends data in cleartext; "+
				"prefer authPriv", i))
		}
	}
	return w
}

// ScanPrefixes returns the scanned subnets. It panics on an invalid configuration: call
// Validate first.
func (c *Config) ScanPrefixes() []netip.Prefix { return mustPrefixes(c.Subnets) }

// PassivePrefixes returns the passive-only subnets; see ScanPrefixes.
func (c *Config) PassivePrefixes() []netip.Prefix { return mustPrefixes(c.PassiveSubnets) }

// ExcludedPrefixes returns the excluded ranges, single addresses as /32 or /128.
func (c *Config) ExcludedPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(c.Exclude))
	for _, s := range c.Exclude {
		p, err := parseRange(s)
		if err != nil {
			panic("site: ExcludedPrefixes on an invalid config: " + err.Error())
		}
		out = append(out, p)
	}
	return out
}

// MayProbe reports whether the collector may actively probe addr: it lies in a scanned
// subnet and neither in a passive subnet nor in an excluded range.
func (c *Config) MayProbe(addr netip.Addr) bool {
	return contains(c.ScanPrefixes(), addr) && !c.Untouchable(addr)
}

// Untouchable reports whether addr lies in a passive subnet or an excluded range.
func (c *Config) Untouchable(addr netip.Addr) bool {
	return contains(c.PassivePrefixes(), addr) || c.Excluded(addr)
}

// Excluded reports whether addr lies in an excluded range (never probed nor reported).
func (c *Config) Excluded(addr netip.Addr) bool {
	return contains(c.ExcludedPrefixes(), addr)
}

func contains(ps []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range ps {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func mustPrefixes(ss []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		p, err := parsePrefix(s)
		if err != nil {
			panic("site: prefixes of an invalid config: " + err.Error())
		}
		out = append(out, p)
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR subnet", s)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s", s, p.Masked())
	}
	if p.Addr().Is4() && p.Bits() < 16 || p.Addr().Is6() && p.Bits() < 112 {
		return netip.Prefix{}, fmt.Errorf("%q is too large for a clinic site", s)
	}
	return p, nil
}

// parseRange accepts a single address or a CIDR range.
func parseRange(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an address nor a CIDR range", s)
	}
	return p.Masked(), nil
}

func prefixSize(p netip.Prefix) int {
	return 1 << (p.Addr().BitLen() - p.Bits())
}
