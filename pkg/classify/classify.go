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
	// vendorHits caches the keywords found in each vendor name (string -> []*keyword):
	// a network has few vendors and many hosts.
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

// finding is one piece of evidence for one type.
type finding struct {
	typ    Type
	weight float64
	reason string
	// generic marks protocol-only evidence (an HL7 port, the word "HL7") that says a
	// host speaks a clinical protocol without naming a product.
	generic bool
}

// evidence is everything gathered about one host.
type evidence struct {
	findings []finding
	os       osInfo
	vendor   string
	virtual  bool // the MAC belongs to a virtual machine's network card

	kerberos, ldap  bool // Kerberos and LDAP are served
	activeDirectory bool // the LDAP service says it is Active Directory
	// notable counts services a desktop would not run; notableWhat names the first.
	notable     int
	notableWhat string
}

func (e *evidence) add(t Type, w float64, reason string) {
	e.findings = append(e.findings, finding{typ: t, weight: w, reason: reason})
}

// Classify decides what h is. It never fails: a host nothing identifies is Unknown. h is
// not modified and may be shared.
func (c *Classifier) Classify(h *Host) Result {
	e := c.gather(h)

	d := decide(&e)

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

// gather collects every piece of evidence about h.
func (c *Classifier) gather(h *Host) evidence {
	e := evidence{os: gatherOS(h), findings: make([]finding, 0, 8)}

	c.gatherVendor(h, &e)
	gatherSNMP(h, &e)
	gatherFingerprint(h, &e)
	gatherServices(h, &e)

	var text corpus
	text.grow(h)
	fillCorpus(h, &text)
	c.text.find(&text, func(m hit) {
		e.add(m.kw.typ, m.kw.weight, m.where+" names "+strconv.Quote(m.text))
		if m.kw.word == "hl7" || m.kw.word == "mllp" {
			e.findings[len(e.findings)-1].generic = true
		}
	})
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
	for _, v := range virtualNICVendors {
		if containsFold(e.vendor, v) {
			e.virtual = true
		}
	}

	kws := c.vendorKeywords(e.vendor)
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

// vendorKeywords returns the vendor keywords found in name, from the cache when it can.
func (c *Classifier) vendorKeywords(name string) []*keyword {
	if v, ok := c.vendorHits.Load(name); ok {
		return v.([]*keyword)
	}
	var vc corpus
	vc.add("vendor", nil, name)
	var kws []*keyword
	c.vendor.find(&vc, func(m hit) { kws = append(kws, m.kw) })
	if c.cached.Load() < maxCachedVendors {
		c.cached.Add(1)
		c.vendorHits.Store(name, kws)
	}
	return kws
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
			e.add(sigDICOM, 0.95, fmt.Sprintf("port %s answered as DICOM (dicom-ping)", portName(s)))
			return
		}
	}
	name := strings.ToLower(s.Name)
	switch {
	case name == "dicom" && s.Product != "":
		e.add(sigDICOM, 0.9, fmt.Sprintf("port %s answered as DICOM (%s)", portName(s), s.Product))
	case name == "dicom" && s.Port != 11112:
		e.add(sigDICOM, 0.85, fmt.Sprintf("port %s answered as DICOM", portName(s)))
	case s.Port == 104 || s.Port == 11112:
		e.add(sigDICOM, 0.6, fmt.Sprintf("port %s, the DICOM portName(s), is open", portName(s)))
	case name == "hl7-mlp" || name == "hl7-mllp":
		e.findings = append(e.findings, finding{HL7InterfaceEngine, 0.9,
			fmt.Sprintf("port %s answered as HL7 over MLLP", portName(s)), true})
	case s.Port == 2575:
		e.findings = append(e.findings, finding{HL7InterfaceEngine, 0.7,
			fmt.Sprintf("port %s, the HL7 MLLP portName(s), is open", portName(s)), true})
	}
}

func gatherAppliancePort(s *Service, e *evidence) {
	name := strings.ToLower(s.Name)
	switch {
	case name == "jetdirect" || s.Port == 9100 && name == "":
		e.add(Printer, 0.55, fmt.Sprintf("port %s (raw printing) is open", portName(s)))
	case name == "printer" || name == "ipp":
		e.add(Printer, 0.35, fmt.Sprintf("port %s (%s printing) is open", portName(s), name))
	case name == "sip" || name == "sip-tls":
		e.add(IPPhone, 0.45, fmt.Sprintf("port %s (SIP) is open", portName(s)))
	case name == "rtsp" && s.Port == 554:
		e.add(IPCamera, 0.45, fmt.Sprintf("port %s (RTSP video) is open", portName(s)))
	case name == "afp" || name == "nfs" || name == "iscsi":
		e.add(NASStorage, 0.35, fmt.Sprintf("port %s (%s file sharing) is open", portName(s), name))
	case name == "vmware-auth":
		e.add(Hypervisor, 0.85, fmt.Sprintf("port %s answered as VMware's host agent", portName(s)))
	case name == "isakmp" || name == "nat-t-ike" || name == "openvpn" || name == "pptp":
		e.add(VPNGateway, 0.35, fmt.Sprintf("port %s (%s VPN) is open", portName(s), name))
	case name == "bgp":
		e.add(Router, 0.45, fmt.Sprintf("port %s (BGP) is open", portName(s)))
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
			if sc.ID != "dicom-ping" { // its answer is read in gatherClinicalPort
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
		e.add(DatabaseServer, w, fmt.Sprintf("%s listens on %s", what, portName(s)))
		return
	}

	web := strings.HasPrefix(name, "http") || name == "https" ||
		name == "ssl/http" || name == "https-alt"
	switch {
	case !web, winRMPorts[s.Port], containsFold(s.Product, "microsoft httpapi"):
		return
	case s.Product != "":
		e.add(WebServer, 0.75, fmt.Sprintf("%s serves the web on %s",
			strings.TrimSpace(s.Product+" "+s.Version), portName(s)))
	default:
		e.add(WebServer, 0.6, fmt.Sprintf("a web server answers on %s", portName(s)))
	}
}
