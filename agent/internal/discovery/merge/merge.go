// Package merge folds what the discovery methods saw into one record per device, keyed by
// MAC address where known and by IP address otherwise, and remembers which method saw
// what and when.
package merge

import (
	"cmp"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Method names, as they appear in DiscoveredDevice.methods.
const (
	MethodNmap = "nmap"
	MethodARP  = "arp"
	MethodSNMP = "snmp"
	MethodMDNS = "mdns"
)

// methodRank orders methods by how much their self-descriptions are to be trusted for
// hostname, description and OS: a device's own SNMP agent first, then mDNS, then nmap's
// guesses, then ARP (which names nothing).
var methodRank = map[string]int{MethodSNMP: 0, MethodMDNS: 1, MethodNmap: 2, MethodARP: 3}

// Sighting is what one method observed of one device at one time. Addr or MAC must be
// set; every other field is optional.
type Sighting struct {
	Method      string     // one of the Method constants
	Time        time.Time  // when it was observed; zero means "now" at Add
	Addr        netip.Addr // IP address, when known
	MAC         string     // MAC address in any form net.ParseMAC accepts, when known
	Hostname    string
	Vendor      string // vendor from the MAC prefix, as the method reported it
	OS          string // operating system guess
	Description string // self-description, such as SNMP sysDescr
	Services    []Service
	// Attributes are method-specific facts. Add prefixes each key with "<method>." unless
	// it already carries that prefix.
	Attributes map[string]string
}

// Service is one open port.
type Service struct {
	Port     uint16
	Protocol string // "tcp" or "udp"
	Name     string
	Product  string
	Version  string
	Extra    string // script output or banner that identified it
}

// Seen is when one method saw a device first and last.
type Seen struct {
	First, Last time.Time
}

// Device is one merged record. Its fields are copies: changing them does not change the
// Set.
type Device struct {
	MAC         string // lower-case, colon-separated; empty when unknown
	Addresses   []netip.Addr
	Hostname    string
	Vendor      string
	OS          string
	Description string
	Services    []Service         // sorted by protocol and port
	Methods     map[string]Seen   // method name -> when it saw the device
	Attributes  map[string]string // "<method>.<name>" -> value, and "source.<field>" -> method
	First, Last time.Time
}

// Key returns the device's merge key: its MAC when known, else its first address.
func (d *Device) Key() string {
	if d.MAC != "" {
		return d.MAC
	}
	if len(d.Addresses) > 0 {
		return d.Addresses[0].String()
	}
	return ""
}

// Set accumulates sightings. It is safe for concurrent use; the zero value is not: use
// NewSet.
type Set struct {
	now func() time.Time

	mu     sync.Mutex
	byKey  map[string]*record // MAC or address string -> record
	byAddr map[netip.Addr]*record
}

type record struct {
	Device
	rank map[string]int // field -> rank of the method that set it
}

// NewSet returns an empty set. now is the clock used for sightings without a time; nil
// means time.Now.
func NewSet(now func() time.Time) *Set {
	if now == nil {
		now = time.Now
	}
	return &Set{now: now, byKey: map[string]*record{}, byAddr: map[netip.Addr]*record{}}
}

// Add merges one sighting. A sighting with neither a valid address nor a valid MAC is
// ignored and Add returns false.
func (s *Set) Add(sg Sighting) bool {
	mac := NormalizeMAC(sg.MAC)
	addr := sg.Addr.Unmap()
	if mac == "" && !addr.IsValid() {
		return false
	}
	if sg.Time.IsZero() {
		sg.Time = s.now()
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	r := s.findLocked(mac, addr)
	r.observe(sg, addr)
	if addr.IsValid() {
		s.byAddr[addr] = r
	}
	return true
}

// findLocked returns the record for mac or addr, creating it, and folds an address-keyed
// record into the MAC-keyed one once the address's MAC becomes known.
func (s *Set) findLocked(mac string, addr netip.Addr) *record {
	var byAddr *record
	if addr.IsValid() {
		byAddr = s.byAddr[addr]
	}
	if mac == "" {
		if byAddr != nil {
			return byAddr
		}
		return s.createLocked(addr.String(), "")
	}

	r := s.byKey[mac]
	if r == nil {
		r = s.createLocked(mac, mac)
	}
	if byAddr != nil && byAddr != r && byAddr.MAC == "" {
		r.absorb(byAddr)
		delete(s.byKey, byAddr.Key())
		for _, a := range byAddr.Addresses {
			s.byAddr[a] = r
		}
	}
	return r
}

func (s *Set) createLocked(key, mac string) *record {
	r := &record{Device: Device{MAC: mac, Methods: map[string]Seen{},
		Attributes: map[string]string{}}, rank: map[string]int{}}
	s.byKey[key] = r
	return r
}

// Len returns the number of devices.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byKey)
}

// Devices returns copies of every device, ordered by first address then MAC.
func (s *Set) Devices() []Device {
	s.mu.Lock()
	out := make([]Device, 0, len(s.byKey))
	for _, r := range s.byKey {
		out = append(out, r.copy())
	}
	s.mu.Unlock()

	slices.SortFunc(out, func(a, b Device) int {
		var aa, ba netip.Addr
		if len(a.Addresses) > 0 {
			aa = a.Addresses[0]
		}
		if len(b.Addresses) > 0 {
			ba = b.Addresses[0]
		}
		return cmp.Or(aa.Compare(ba), strings.Compare(a.MAC, b.MAC))
	})
	return out
}

// Remove drops every device that has an address for which drop returns true (an excluded
// address is neither probed nor reported, whatever saw it).
func (s *Set) Remove(drop func(netip.Addr) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, r := range s.byKey {
		if slices.ContainsFunc(r.Addresses, drop) {
			delete(s.byKey, k)
			for _, a := range r.Addresses {
				delete(s.byAddr, a)
			}
		}
	}
}

func (r *record) observe(sg Sighting, addr netip.Addr) {
	seen, ok := r.Methods[sg.Method]
	if !ok || sg.Time.Before(seen.First) {
		seen.First = sg.Time
	}
	if sg.Time.After(seen.Last) {
		seen.Last = sg.Time
	}
	r.Methods[sg.Method] = seen
	if r.First.IsZero() || sg.Time.Before(r.First) {
		r.First = sg.Time
	}
	if sg.Time.After(r.Last) {
		r.Last = sg.Time
	}

	if addr.IsValid() && !slices.Contains(r.Addresses, addr) {
		r.Addresses = append(r.Addresses, addr)
		slices.SortFunc(r.Addresses, netip.Addr.Compare)
	}
	rank, ok := methodRank[sg.Method]
	if !ok {
		rank = len(methodRank)
	}
	r.setField("hostname", &r.Hostname, sg.Hostname, sg.Method, rank)
	r.setField("vendor", &r.Vendor, sg.Vendor, sg.Method, rank)
	r.setField("os", &r.OS, sg.OS, sg.Method, rank)
	r.setField("description", &r.Description, sg.Description, sg.Method, rank)
	for _, sv := range sg.Services {
		r.addService(sv)
	}
	for k, v := range sg.Attributes {
		if !strings.HasPrefix(k, sg.Method+".") {
			k = sg.Method + "." + k
		}
		r.Attributes[k] = v
	}
}

// setField keeps the value from the most trusted method; among equals, the latest wins.
func (r *record) setField(name string, field *string, v, method string, rank int) {
	if v == "" {
		return
	}
	if old, ok := r.rank[name]; ok && old < rank {
		return
	}
	*field = v
	r.rank[name] = rank
	r.Attributes["source."+name] = method
}

func (r *record) addService(sv Service) {
	i := slices.IndexFunc(r.Services, func(o Service) bool {
		return o.Port == sv.Port && o.Protocol == sv.Protocol
	})
	if i < 0 {
		r.Services = append(r.Services, sv)
		slices.SortFunc(r.Services, func(a, b Service) int {
			return cmp.Or(strings.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
		})
		return
	}
	old := &r.Services[i]
	for _, f := range []struct {
		dst *string
		src string
	}{{&old.Name, sv.Name},
		{&old.Product, sv.Product}, {&old.Version, sv.Version}, {&old.Extra, sv.Extra}} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
}

// absorb folds an address-keyed record (no MAC) into r.
func (r *record) absorb(o *record) {
	for m, seen := range o.Methods {
		cur, ok := r.Methods[m]
		if !ok || seen.First.Before(cur.First) {
			cur.First = seen.First
		}
		if seen.Last.After(cur.Last) {
			cur.Last = seen.Last
		}
		r.Methods[m] = cur
	}
	for _, a := range o.Addresses {
		if !slices.Contains(r.Addresses, a) {
			r.Addresses = append(r.Addresses, a)
		}
	}
	slices.SortFunc(r.Addresses, netip.Addr.Compare)
	if r.First.IsZero() || (!o.First.IsZero() && o.First.Before(r.First)) {
		r.First = o.First
	}
	if o.Last.After(r.Last) {
		r.Last = o.Last
	}
	for _, f := range []struct {
		name     string
		dst, src *string
	}{{"hostname", &r.Hostname, &o.Hostname}, {"vendor", &r.Vendor, &o.Vendor},
		{"os", &r.OS, &o.OS}, {"description", &r.Description, &o.Description}} {
		if rank, ok := o.rank[f.name]; ok {
			r.setField(f.name, f.dst, *f.src, o.Attributes["source."+f.name], rank)
		}
	}
	for _, sv := range o.Services {
		r.addService(sv)
	}
	for k, v := range o.Attributes {
		if _, ok := r.Attributes[k]; !ok {
			r.Attributes[k] = v
		}
	}
}

func (r *record) copy() Device {
	d := r.Device
	d.Addresses = slices.Clone(d.Addresses)
	d.Services = slices.Clone(d.Services)
	d.Methods = maps.Clone(d.Methods)
	d.Attributes = maps.Clone(d.Attributes)
	return d
}

// NormalizeMAC returns mac lower-case and colon-separated, or "" when it is not a 48-bit
// MAC address or is all zeros or broadcast.
func NormalizeMAC(mac string) string {
	hw, err := net.ParseMAC(strings.TrimSpace(mac))
	if err != nil || len(hw) != 6 {
		return ""
	}
	s := hw.String()
	if s == "00:00:00:00:00:00" || s == "ff:ff:ff:ff:ff:ff" {
		return ""
	}
	return s
}

// MethodNames returns the device's method names, sorted.
func (d *Device) MethodNames() []string {
	return slices.Sorted(maps.Keys(d.Methods))
}
