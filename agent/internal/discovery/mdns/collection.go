package mdns

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/wardsec/ward/agent/internal/discovery/merge"
)

// enumeration is the DNS-SD meta-query name whose PTR answers are service types.
const enumeration = "_services._dns-sd._udp.local."

// srv is one instance's SRV record.
type srv struct {
	target string
	port   uint16
}

// collection folds the records of every answer heard on one interface.
type collection struct {
	iface     string
	instances map[string]map[string]bool // service type -> instance names
	srvs      map[string]srv             // instance -> SRV
	txts      map[string]map[string]string
	hosts     map[string][]netip.Addr // host name -> addresses
	from      map[string]netip.Addr   // instance or host name -> responder that sent it
	types     map[string]bool         // service types responders enumerated
	seen      map[netip.Addr]time.Time
}

func newCollection(iface string) *collection {
	return &collection{iface: iface, instances: map[string]map[string]bool{},
		srvs: map[string]srv{}, txts: map[string]map[string]string{},
		hosts: map[string][]netip.Addr{}, from: map[string]netip.Addr{},
		types: map[string]bool{}, seen: map[netip.Addr]time.Time{}}
}

// add folds every record of one response that from sent at t.
func (c *collection) add(from netip.Addr, m *dnsmessage.Message, t time.Time) {
	c.seen[from] = t
	for _, rs := range [][]dnsmessage.Resource{m.Answers, m.Additionals} {
		for _, r := range rs {
			c.addRecord(from, r)
		}
	}
}

func (c *collection) addRecord(from netip.Addr, r dnsmessage.Resource) {
	name := strings.ToLower(r.Header.Name.String())
	switch b := r.Body.(type) {
	case *dnsmessage.PTRResource:
		target := b.PTR.String()
		if name == enumeration {
			c.types[strings.ToLower(target)] = true
			return
		}
		if c.instances[name] == nil {
			c.instances[name] = map[string]bool{}
		}
		c.instances[name][target] = true
		c.from[target] = from
	case *dnsmessage.SRVResource:
		key := r.Header.Name.String()
		c.srvs[key] = srv{target: strings.ToLower(b.Target.String()), port: b.Port}
		c.from[key] = from
		if _, ok := c.from[strings.ToLower(b.Target.String())]; !ok {
			c.from[strings.ToLower(b.Target.String())] = from
		}
	case *dnsmessage.TXTResource:
		kv := map[string]string{}
		for _, s := range b.TXT {
			k, v, _ := strings.Cut(s, "=")
			if k != "" {
				kv[k] = v
			}
		}
		c.txts[r.Header.Name.String()] = kv
	case *dnsmessage.AResource:
		a := netip.AddrFrom4(b.A)
		if !slices.Contains(c.hosts[name], a) {
			c.hosts[name] = append(c.hosts[name], a)
		}
		c.from[name] = from
	}
}

// missing returns the questions not yet asked that would complete the collection: SRV
// and TXT of instances without them, A of SRV targets without an address, PTR of service
// types that responders enumerated.
func (c *collection) missing(asked map[string]bool) []dnsmessage.Question {
	var qs []dnsmessage.Question
	ask := func(name string, t dnsmessage.Type) {
		key := t.String() + " " + strings.ToLower(name)
		if asked[key] {
			return
		}
		asked[key] = true
		if q, err := question(name, t); err == nil {
			qs = append(qs, q)
		}
	}
	for _, typ := range sortedKeys(c.types) {
		if c.instances[typ] == nil {
			ask(typ, dnsmessage.TypePTR)
		}
	}
	for _, typ := range sortedKeys(c.instances) {
		for _, inst := range sortedKeys(c.instances[typ]) {
			if _, ok := c.srvs[inst]; !ok {
				ask(inst, dnsmessage.TypeSRV)
			}
			if _, ok := c.txts[inst]; !ok {
				ask(inst, dnsmessage.TypeTXT)
			}
		}
	}
	for _, inst := range sortedKeys(c.srvs) {
		if s := c.srvs[inst]; len(c.hosts[s.target]) == 0 {
			ask(s.target, dnsmessage.TypeA)
		}
	}
	return qs
}

// device is what the collection knows of one responder.
type device struct {
	hostname string
	services []merge.Service
	types    map[string]bool
	instance string
	model    string
	maker    string
}

// sightings returns one sighting per responding address.
func (c *collection) sightings() []merge.Sighting {
	devs := map[netip.Addr]*device{}
	get := func(a netip.Addr) *device {
		d := devs[a]
		if d == nil {
			d = &device{types: map[string]bool{}}
			devs[a] = d
		}
		return d
	}
	for _, typ := range sortedKeys(c.instances) {
		for _, inst := range sortedKeys(c.instances[typ]) {
			c.addInstance(get, typ, inst)
		}
	}
	for a := range c.seen {
		get(a)
	}

	out := make([]merge.Sighting, 0, len(devs))
	for _, a := range sortedAddrs(devs) {
		d := devs[a]
		sg := merge.Sighting{Method: merge.MethodMDNS, Time: c.seen[a], Addr: a,
			Hostname: d.hostname, Description: d.model, Services: d.services,
			Attributes: map[string]string{"interface": c.iface}}
		if sg.Time.IsZero() {
			sg.Time = time.Now()
		}
		if len(d.types) > 0 {
			sg.Attributes["services"] = strings.Join(sortedKeys(d.types), ",")
		}
		for k, v := range map[string]string{"instance": d.instance, "model": d.model,
			"manufacturer": d.maker} {
			if v != "" {
				sg.Attributes[k] = v
			}
		}
		out = append(out, sg)
	}
	return out
}

// addInstance adds one service instance to the device at its host's address (else the
// address of the responder that announced it).
func (c *collection) addInstance(get func(netip.Addr) *device, typ, inst string) {
	s, hasSRV := c.srvs[inst]
	addr := c.from[inst]
	if hasSRV {
		if as := c.hosts[s.target]; len(as) > 0 {
			addr = as[0]
		}
	}
	if !addr.IsValid() {
		return
	}
	d := get(addr)
	short := strings.TrimSuffix(typ, ".local.")
	d.types[short] = true
	label := strings.TrimSuffix(inst, "."+typ)
	if d.instance == "" {
		d.instance = label
	}
	if hasSRV {
		if d.hostname == "" {
			d.hostname = hostLabel(s.target)
		}
		proto := "tcp"
		if strings.HasSuffix(typ, "._udp.local.") {
			proto = "udp"
		}
		name := strings.TrimPrefix(strings.SplitN(short, ".", 2)[0], "_")
		if s.port != 0 && !slices.ContainsFunc(d.services, func(o merge.Service) bool {
			return o.Port == s.port && o.Protocol == proto
		}) {
			d.services = append(d.services, merge.Service{Port: s.port, Protocol: proto,
				Name: name, Extra: "mdns: " + label})
		}
	}
	txt := c.txts[inst]
	for _, k := range modelKeys {
		if v := txt[k]; v != "" && d.model == "" {
			d.model = v
		}
	}
	for _, k := range vendorKeys {
		if v := txt[k]; v != "" && d.maker == "" {
			d.maker = v
		}
	}
}

func sortedAddrs(m map[netip.Addr]*device) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
