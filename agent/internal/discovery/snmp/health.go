package snmp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/wardsec/ward/pkg/site"
)

// IF-MIB ifTable columns a health poll reads. IF-MIB has no 64-bit error counters (its
// ifHC* counters cover octets and packets only), so errors are the 32-bit ifInErrors and
// ifOutErrors, which wrap; the controller accounts for that.
const (
	oidIfOperStatus = ".1.3.6.1.2.1.2.2.1.8"
	oidIfInErrors   = ".1.3.6.1.2.1.2.2.1.14"
	oidIfOutErrors  = ".1.3.6.1.2.1.2.2.1.20"
)

// healthRetries is how many times a health poll repeats an unanswered request before the
// device counts as unreachable with that credential.
const healthRetries = 2

// Health is what one health poll of a device found.
type Health struct {
	// Uptime is sysUpTime in hundredths of a second: the time since the device's SNMP
	// agent last started. A lower value than at the previous poll is a restart.
	Uptime uint64
	// SysName is the device's sysName.
	SysName string
	// Interfaces are the device's interfaces by ifIndex, at most maxWalk; none when it
	// does not offer IF-MIB.
	Interfaces []Interface
	// Credential describes the credential that answered, without its secret.
	Credential string
}

// Interface is one row of the device's IF-MIB ifTable.
type Interface struct {
	Index      uint32
	Name       string // ifDescr
	OperStatus uint32 // ifOperStatus; 0 when not offered
	InErrors   uint64 // ifInErrors
	OutErrors  uint64 // ifOutErrors
}

// HealthPoller polls devices for their health: uptime and interface errors. It remembers
// which credential each device answered last and tries it first. Safe for concurrent use.
type HealthPoller struct {
	// Creds are tried in order (the last one that worked for the device first).
	Creds []site.SNMPCredential
	// Timeout per request; zero means 2 s. Each request is retried twice.
	Timeout time.Duration
	// Port is the agents' UDP port; zero means 161.
	Port uint16

	mu   sync.Mutex
	last map[netip.Addr]int // index in Creds of the credential that answered last
}

// Health polls addr once. An error wrapping ErrNoAnswer means no credential got an answer
// after retries: the device is unreachable (or refuses every credential). The error never
// contains a secret.
func (p *HealthPoller) Health(ctx context.Context, addr netip.Addr) (Health, error) {
	if len(p.Creds) == 0 {
		return Health{}, errors.New("snmp: no credentials")
	}
	var errs []error
	for _, i := range p.order(addr) {
		cred := p.Creds[i]
		h, err := p.healthWith(ctx, addr, cred)
		if err == nil {
			p.remember(addr, i)
			h.Credential = cred.String()
			return h, nil
		}
		if ctx.Err() != nil {
			return Health{}, ctx.Err()
		}
		errs = append(errs, fmt.Errorf("%s: %w", cred, err))
	}
	return Health{}, fmt.Errorf("%w %s: %w", ErrNoAnswer, addr, errors.Join(errs...))
}

// order returns the credential indexes to try for addr: the last one that answered first.
func (p *HealthPoller) order(addr netip.Addr) []int {
	p.mu.Lock()
	first, ok := p.last[addr]
	p.mu.Unlock()
	out := make([]int, 0, len(p.Creds))
	if ok && first < len(p.Creds) {
		out = append(out, first)
	}
	for i := range p.Creds {
		if !ok || i != first {
			out = append(out, i)
		}
	}
	return out
}

func (p *HealthPoller) remember(addr netip.Addr, i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last = map[netip.Addr]int{}
	}
	p.last[addr] = i
}

func (p *HealthPoller) healthWith(ctx context.Context, addr netip.Addr,
	cred site.SNMPCredential) (Health, error) {
	g, err := (&Poller{Timeout: p.Timeout, Port: p.Port}).client(ctx, addr, cred)
	if err != nil {
		return Health{}, err
	}
	g.Retries = healthRetries
	if err := g.Connect(); err != nil {
		return Health{}, fmt.Errorf("connect: %w", err)
	}
	defer g.Conn.Close()

	res, err := g.Get([]string{oidSysUpTime, oidSysName})
	if err != nil {
		return Health{}, fmt.Errorf("get uptime: %w", err)
	}
	var h Health
	answered := false
	for _, v := range res.Variables {
		switch v.Name {
		case oidSysUpTime:
			if v.Type == gosnmp.TimeTicks {
				h.Uptime = gosnmp.ToBigInt(v.Value).Uint64()
				answered = true
			}
		case oidSysName:
			h.SysName = value(v)
		}
	}
	if !answered {
		return Health{}, errors.New("no sysUpTime in the answer")
	}
	h.Interfaces = interfaces(g)
	return h, nil
}

// interfaces walks the ifTable columns a health poll needs and joins them by ifIndex.
func interfaces(g *gosnmp.GoSNMP) []Interface {
	rows := map[uint32]*Interface{}
	row := func(name string, root string) *Interface {
		idx, err := strconv.ParseUint(strings.TrimPrefix(name, root+"."), 10, 32)
		if err != nil {
			return nil
		}
		r := rows[uint32(idx)]
		if r == nil {
			if len(rows) >= maxWalk {
				return nil
			}
			r = &Interface{Index: uint32(idx)}
			rows[uint32(idx)] = r
		}
		return r
	}
	walkFn := g.BulkWalk
	if g.Version == gosnmp.Version1 {
		walkFn = g.Walk
	}
	columns := []struct {
		root string
		set  func(*Interface, gosnmp.SnmpPDU)
	}{
		{oidIfDescr, func(r *Interface, v gosnmp.SnmpPDU) { r.Name = value(v) }},
		{oidIfOperStatus, func(r *Interface, v gosnmp.SnmpPDU) {
			r.OperStatus = uint32(gosnmp.ToBigInt(v.Value).Uint64())
		}},
		{oidIfInErrors, func(r *Interface, v gosnmp.SnmpPDU) {
			r.InErrors = gosnmp.ToBigInt(v.Value).Uint64()
		}},
		{oidIfOutErrors, func(r *Interface, v gosnmp.SnmpPDU) {
			r.OutErrors = gosnmp.ToBigInt(v.Value).Uint64()
		}},
	}
	for _, col := range columns {
		n := 0
		_ = walkFn(col.root, func(v gosnmp.SnmpPDU) error {
			if n++; n > maxWalk {
				return errors.New("enough")
			}
			if r := row(v.Name, col.root); r != nil {
				col.set(r, v)
			}
			return nil
		})
	}
	out := make([]Interface, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}
