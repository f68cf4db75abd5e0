package classify

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// threshold is the score a non-clinical type needs before its level wins. Clinical
// evidence needs none: any of it makes the host clinical.
const threshold = 0.5

// Classifier classifies hosts with a vendor table. It is immutable and safe for
// concurrent use. The zero value is not usable; use New.
type Classifier struct {
	vendors *Vendors
	text    *matcher
	vendor  *matcher
	// vendorHits caches what each vendor name says (string -> *vendorFacts): a network
	// has few vendors and many hosts.
	vendorHits sync.Map
	cached     atomic.Int32 // entries in vendorHits, capped at maxCachedVendors
}

// maxCachedVendors bounds the vendor cache: vendor names may come from the network.
const maxCachedVendors = 4096

// New returns a Classifier that looks MAC prefixes up in vendors; nil vendors means the
// embedded fallback table.
func New(vendors *Vendors) *Classifier {
	if vendors == nil {
		vendors = FallbackVendors()
	}
	return &Classifier{vendors: vendors, text: textMatcher, vendor: vendorMatcher}
}

var (
	textMatcher   = newMatcher(textKeywords)
	vendorMatcher = newMatcher(vendorKeywords)
	defaultC      = New(nil)
)

// Classify classifies h with the embedded fallback vendor table.
func Classify(h *Host) Result {
	return defaultC.Classify(h)
}

// finding is one piece of evidence for one type. Its reason is put into words only when
// it is shown (see reason), so that evidence that loses costs no formatting.
type finding struct {
	typ    Type
	weight float64
	// generic marks protocol-only evidence (an HL7 port, the word "HL7") that says a
	// host speaks a clinical protocol without naming a product.
	generic bool

	form reasonForm
	svc  *Service // the port the evidence came from, for the port forms
	a, b string   // form arguments
}

// reasonForm is how a finding's reason is worded.
type reasonForm uint8

const (
	formText   reasonForm = iota // a
	formPort                     // "port <port>" + a
	formOnPort                   // a + b + "<port>"
	formNames                    // a [+ " on <port>"] + " names " + quoted b
)

// reason puts the finding's evidence into words.
func (f *finding) reason() string {
	switch f.form {
	case formPort:
		return "port " + portName(f.svc) + f.a
	case formOnPort:
		return f.a + f.b + portName(f.svc)
	case formNames:
		return where{f.a, f.svc}.String() + " names " + strconv.Quote(f.b)
	}
	return f.a
}

// evidence is everything gathered about one host.
type evidence struct {
	findings []finding
	scores   scoreSet // filled by decide
	os       osInfo
	vendor   string
	virtual  bool // the MAC belongs to a virtual machine's network card

	kerberos, ldap  bool // Kerberos and LDAP are served
	activeDirectory bool // the LDAP service says it is Active Directory
	// notable counts services a desktop would not run; notableWhat names the first.
	notable     int
	notableWhat string
}

// add records evidence for t whose reason is the text reason.
func (e *evidence) add(t Type, w float64, reason string) {
	e.findings = append(e.findings, finding{typ: t, weight: w, a: reason})
}

// addPort records evidence from port s, worded "port <port>" + rest.
func (e *evidence) addPort(t Type, w float64, s *Service, rest string) {
	e.findings = append(e.findings, finding{typ: t, weight: w, form: formPort, svc: s, a: rest})
}

// addOnPort records evidence from port s, worded what + verb + "<port>".
func (e *evidence) addOnPort(t Type, w float64, s *Service, what, verb string) {
	e.findings = append(e.findings, finding{typ: t, weight: w, form: formOnPort, svc: s,
		a: what, b: verb})
}

// Classify decides what h is. It never fails: a host nothing identifies is Unknown. h is
// not modified and may be shared.
func (c *Classifier) Classify(h *Host) Result {
	sc := scratchPool.Get().(*scratch)
	defer sc.release()
	e := c.gather(h, sc)

	d := decide(&e)
	sc.scores = e.scores

	p := profileByType[d.typ]
	r := Result{
		Type:          d.typ,
		Tier:          p.Tier,
		ShouldMonitor: p.ShouldMonitor,
		Strategy:      p.Strategy,
		Enrollment:    p.Enrollment,
		Confidence:    round2(d.confidence),
		Reasons:       d.reasons,
		Controls:      ControlsOf(d.typ),
		Vendor:        e.vendor,
		Clinical:      d.clinical,
	}
	return r
}

// scratch is the working memory of one classification, reused through scratchPool.
type scratch struct {
	text     corpus
	findings []finding
	scores   scoreSet
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// maxScratch bounds the buffers kept for reuse.
const maxScratch = 64 << 10

// release forgets the host's data and returns sc to the pool.
func (sc *scratch) release() {
	clear(sc.findings)
	sc.findings = sc.findings[:0]
	clear(sc.scores.types)
	clear(sc.text.wheres)
	clear(sc.text.srcs)
	if cap(sc.text.lower) > maxScratch {
		sc.text = corpus{}
	}
	scratchPool.Put(sc)
}

// gather collects every piece of evidence about h, in sc's memory.
func (c *Classifier) gather(h *Host, sc *scratch) evidence {
	e := evidence{os: gatherOS(h), findings: sc.findings[:0], scores: sc.scores}

	c.gatherVendor(h, &e)
	gatherSNMP(h, &e)
	gatherFingerprint(h, &e)
	gatherServices(h, &e)

	text := &sc.text
	text.reset(h)
	fillCorpus(h, text)
	c.text.find(text, func(m hit) {
		e.findings = append(e.findings, finding{typ: m.kw.typ, weight: m.kw.weight,
			form: formNames, svc: m.where.svc, a: m.where.label, b: m.text,
			generic: m.kw.word == "hl7" || m.kw.word == "mllp"})
	})
	sc.findings = e.findings
	return e
}

func (c *Classifier) gatherVendor(h *Host, e *evidence) {
	e.vendor = strings.TrimSpace(h.Vendor)
	if e.vendor == "" {
		e.vendor, _ = c.vendors.Lookup(h.MAC)
	}
	if e.vendor == "" {
		return
	}
	vi := c.vendorInfo(e.vendor)
	e.virtual = vi.virtual
	kws := vi.keywords
	if len(kws) == 0 {
		return
	}
	what := "the MAC vendor is " + e.vendor
	if prefix := FormatPrefix(h.MAC); prefix != "" {
		what = "MAC prefix " + prefix + " belongs to " + e.vendor
	}
	for _, kw := range kws {
		e.add(kw.typ, kw.weight, what)
	}
}

// vendorFacts is what a vendor name says: keywords found in it, and whether it makes
// virtual machines' network cards.
type vendorFacts struct {
	keywords []*keyword
	virtual  bool
}

// vendorInfo returns what the vendor name says, from the cache when it can.
func (c *Classifier) vendorInfo(name string) *vendorFacts {
	if v, ok := c.vendorHits.Load(name); ok {
		return v.(*vendorFacts)
	}
	vi := &vendorFacts{}
	var vc corpus
	vc.add("vendor", nil, name)
	c.vendor.find(&vc, func(m hit) { vi.keywords = append(vi.keywords, m.kw) })
	for _, v := range virtualNICVendors {
		if containsFold(name, v) {
			vi.virtual = true
		}
	}
	if c.cached.Load() < maxCachedVendors {
		c.cached.Add(1)
		c.vendorHits.Store(name, vi)
	}
	return vi
}

func gatherSNMP(h *Host, e *evidence) {
	oid := strings.TrimPrefix(strings.TrimSpace(h.SysObjectID), ".")
	if oid == "" {
		return
	}
	for _, et := range enterpriseTypes {
		if strings.HasPrefix(oid+".", et.prefix) {
			e.add(et.typ, et.weight, fmt.Sprintf("SNMP sysObjectID %s belongs to %s",
				oid, et.maker))
			return
		}
	}
}

func gatherFingerprint(h *Host, e *evidence) {
	if len(h.OS) == 0 {
		return
	}
	m := h.OS[0]
	t, ok := deviceClassTypes[strings.ToLower(m.DeviceType)]
	if !ok {
		return
	}
	acc := float64(m.Accuracy) / 100
	if m.Accuracy == 0 {
		acc = 0.6
	}
	e.add(t, 0.8*acc, fmt.Sprintf("OS fingerprint %q (%d%%) is a %s device",
		m.Name, m.Accuracy, m.DeviceType))
}

// gatherServices takes evidence from open ports: clinical protocols always, and
// appliance ports only on a host no fingerprint calls a general-purpose computer.
func gatherServices(h *Host, e *evidence) {
	for i := range h.Services {
		s := &h.Services[i]
		gatherClinicalPort(s, e)
		gatherRole(s, e)
		if !e.os.generalPurpose {
			gatherAppliancePort(s, e)
		}
	}
}

func gatherClinicalPort(s *Service, e *evidence) {
	for _, sc := range s.Scripts {
		if sc.ID == "dicom-ping" && containsFold(sc.Output, "dicom service provider") {
			e.addPort(sigDICOM, 0.95, s, " answered as DICOM (dicom-ping)")
			return
		}
	}
	name := strings.ToLower(s.Name)
	switch {
	case name == "dicom" && s.Product != "":
		e.addPort(sigDICOM, 0.9, s, " answered as DICOM ("+s.Product+")")
	case name == "dicom" && s.Port != 11112:
		e.addPort(sigDICOM, 0.85, s, " answered as DICOM")
	case s.Port == 104 || s.Port == 11112:
		e.addPort(sigDICOM, 0.6, s, ", the DICOM port, is open")
	case name == "hl7-mlp" || name == "hl7-mllp":
		e.addPort(HL7InterfaceEngine, 0.9, s, " answered as HL7 over MLLP")
		e.findings[len(e.findings)-1].generic = true
	case s.Port == 2575:
		e.addPort(HL7InterfaceEngine, 0.7, s, ", the HL7 MLLP port, is open")
		e.findings[len(e.findings)-1].generic = true
	}
}

func gatherAppliancePort(s *Service, e *evidence) {
	name := strings.ToLower(s.Name)
	switch {
	case name == "jetdirect" || s.Port == 9100 && name == "":
		e.addPort(Printer, 0.55, s, " (raw printing) is open")
	case name == "printer" || name == "ipp":
		e.addPort(Printer, 0.35, s, " ("+name+" printing) is open")
	case name == "sip" || name == "sip-tls":
		e.addPort(IPPhone, 0.45, s, " (SIP) is open")
	case name == "rtsp" && s.Port == 554:
		e.addPort(IPCamera, 0.45, s, " (RTSP video) is open")
	case name == "afp" || name == "nfs" || name == "iscsi":
		e.addPort(NASStorage, 0.35, s, " ("+name+" file sharing) is open")
	case name == "vmware-auth":
		e.addPort(Hypervisor, 0.85, s, " answered as VMware's host agent")
	case name == "isakmp" || name == "nat-t-ike" || name == "openvpn" || name == "pptp":
		e.addPort(VPNGateway, 0.35, s, " ("+name+" VPN) is open")
	case name == "bgp":
		e.addPort(Router, 0.45, s, " (BGP) is open")
	}
}

// fillCorpus gathers what h said about itself.
func fillCorpus(h *Host, c *corpus) {
	for i := range h.Services {
		s := &h.Services[i]
		c.add("version detection", s, s.Product)
		c.add("version detection", s, s.ExtraInfo)
		c.add("device type reported", s, s.DeviceType)
		for _, sc := range s.Scripts {
			switch sc.ID {
			case "dicom-ping": // its answer is read in gatherClinicalPort
			case "ssl-cert": // only the names say anything about the host
				c.add(sc.ID, s, certNames(sc.Output))
			default:
				c.add(sc.ID, s, sc.Output)
			}
		}
	}
	for _, sc := range h.Scripts {
		c.add(sc.ID, nil, sc.Output)
	}
	if len(h.OS) > 0 {
		c.add("the OS fingerprint", nil, h.OS[0].Name)
	}
	c.add("SNMP sysDescr", nil, h.SysDescr)
	if len(h.Attributes) > 0 {
		keys := make([]string, 0, len(h.Attributes))
		for k := range h.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			c.add("attribute "+k, nil, h.Attributes[k])
		}
	}
}

// round2 rounds a confidence to two decimals, within [0.01, 0.99]: evidence is never
// certain, and a decision is never without any.
func round2(f float64) float64 {
	f = float64(int(f*100+0.5)) / 100
	return min(max(f, 0.01), 0.99)
}

// desktopServices are services a client machine commonly runs; they say nothing about
// a server role.
var desktopServices = map[string]bool{
	"msrpc": true, "netbios-ssn": true, "microsoft-ds": true, "netbios-ns": true,
	"ms-wbt-server": true, "vnc": true, "x11": true, "ipp": true, "upnp": true,
	"ssdp": true, "mdns": true, "llmnr": true, "wsdapi": true, "rtsp": true,
	"airplay": true, "afp": false, "spotify": true, "ws-discovery": true, "": true,
	"tcpwrapped": true, "unknown": true,
}

// winRMPorts serve Windows remote management over HTTP, not web content.
var winRMPorts = map[int]bool{5985: true, 5986: true, 47001: true}

// gatherRole takes the evidence for a server role from one port.
func gatherRole(s *Service, e *evidence) {
	name := strings.ToLower(s.Name)
	if !desktopServices[name] {
		e.notable++
		if e.notableWhat == "" {
			e.notableWhat = name + " on " + portName(s)
		}
	}

	switch {
	case name == "kerberos-sec" || name == "kerberos" || s.Port == 88:
		e.kerberos = true
	case name == "ldap" || name == "ldapssl" || s.Port == 389 || s.Port == 636 ||
		s.Port == 3268:
		e.ldap = true
		if containsFold(s.Product, "active directory") {
			e.activeDirectory = true
		}
	}

	if db, ok := databaseServices[name]; ok {
		what := db
		if s.Product != "" {
			what = strings.TrimSpace(s.Product + " " + s.Version)
		}
		w := 0.75
		if s.Product != "" {
			w = 0.85
		}
		e.addOnPort(DatabaseServer, w, s, what, " listens on ")
		return
	}

	web := strings.HasPrefix(name, "http") || name == "https" ||
		name == "ssl/http" || name == "https-alt"
	switch {
	case !web, winRMPorts[s.Port], containsFold(s.Product, "microsoft httpapi"):
		return
	case s.Product != "":
		what := s.Product
		if s.Version != "" {
			what += " " + s.Version
		}
		e.addOnPort(WebServer, 0.75, s, what, " serves the web on ")
	default:
		e.addOnPort(WebServer, 0.6, s, "a web server", " answers on ")
	}
}

// certNames returns the Subject and Issuer lines of ssl-cert output (or its start, when
// it has none): fingerprints and dates name no product.
func certNames(out string) string {
	end := 0
	for rest := out; rest != ""; {
		line, tail, _ := strings.Cut(rest, "\n")
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "Subject") &&
			!strings.HasPrefix(t, "Issuer") {
			break
		}
		end += len(line) + 1
		rest = tail
	}
	if end == 0 {
		return clip(out)
	}
	return out[:min(end, len(out))]
}
