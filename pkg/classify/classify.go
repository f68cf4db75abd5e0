package classify

import (
	"fmt"
	"sort"
	"strings"
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
}

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
	e := evidence{os: gatherOS(h)}

	c.gatherVendor(h, &e)
	gatherSNMP(h, &e)
	gatherFingerprint(h, &e)
	gatherServices(h, &e)

	var text corpus
	fillCorpus(h, &text)
	c.text.find(&text, func(m hit) {
		e.add(m.kw.typ, m.kw.weight, fmt.Sprintf("%s names %q", m.where, m.text))
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

	prefix := FormatPrefix(h.MAC)
	var vc corpus
	vc.add("vendor", e.vendor)
	c.vendor.find(&vc, func(m hit) {
		what := fmt.Sprintf("the MAC vendor is %s", e.vendor)
		if prefix != "" {
			what = fmt.Sprintf("MAC prefix %s belongs to %s", prefix, e.vendor)
		}
		e.add(m.kw.typ, m.kw.weight, what)
	})
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
		port := portName(s)
		gatherClinicalPort(s, port, e)
		gatherRole(s, port, e)
		if !e.os.generalPurpose {
			gatherAppliancePort(s, port, e)
		}
	}
}

func gatherClinicalPort(s *Service, port string, e *evidence) {
	for _, sc := range s.Scripts {
		if sc.ID == "dicom-ping" && containsFold(sc.Output, "dicom service provider") {
			e.add(sigDICOM, 0.95, fmt.Sprintf("port %s answered as DICOM (dicom-ping)", port))
			return
		}
	}
	name := strings.ToLower(s.Name)
	switch {
	case name == "dicom" && s.Product != "":
		e.add(sigDICOM, 0.9, fmt.Sprintf("port %s answered as DICOM (%s)", port, s.Product))
	case name == "dicom" && s.Port != 11112:
		e.add(sigDICOM, 0.85, fmt.Sprintf("port %s answered as DICOM", port))
	case s.Port == 104 || s.Port == 11112:
		e.add(sigDICOM, 0.6, fmt.Sprintf("port %s, the DICOM port, is open", port))
	case name == "hl7-mlp" || name == "hl7-mllp":
		e.findings = append(e.findings, finding{HL7InterfaceEngine, 0.9,
			fmt.Sprintf("port %s answered as HL7 over MLLP", port), true})
	case s.Port == 2575:
		e.findings = append(e.findings, finding{HL7InterfaceEngine, 0.7,
			fmt.Sprintf("port %s, the HL7 MLLP port, is open", port), true})
	}
}

func gatherAppliancePort(s *Service, port string, e *evidence) {
	name := strings.ToLower(s.Name)
	switch {
	case name == "jetdirect" || s.Port == 9100 && name == "":
		e.add(Printer, 0.55, fmt.Sprintf("port %s (raw printing) is open", port))
	case name == "printer" || name == "ipp":
		e.add(Printer, 0.35, fmt.Sprintf("port %s (%s printing) is open", port, name))
	case name == "sip" || name == "sip-tls":
		e.add(IPPhone, 0.45, fmt.Sprintf("port %s (SIP) is open", port))
	case name == "rtsp" && s.Port == 554:
		e.add(IPCamera, 0.45, fmt.Sprintf("port %s (RTSP video) is open", port))
	case name == "afp" || name == "nfs" || name == "iscsi":
		e.add(NASStorage, 0.35, fmt.Sprintf("port %s (%s file sharing) is open", port, name))
	case name == "vmware-auth":
		e.add(Hypervisor, 0.85, fmt.Sprintf("port %s answered as VMware's host agent", port))
	case name == "isakmp" || name == "nat-t-ike" || name == "openvpn" || name == "pptp":
		e.add(VPNGateway, 0.35, fmt.Sprintf("port %s (%s VPN) is open", port, name))
	case name == "bgp":
		e.add(Router, 0.45, fmt.Sprintf("port %s (BGP) is open", port))
	}
}

// fillCorpus gathers what h said about itself.
func fillCorpus(h *Host, c *corpus) {
	for i := range h.Services {
		s := &h.Services[i]
		port := portName(s)
		if s.Product != "" || s.ExtraInfo != "" {
			c.add("version detection on "+port,
				strings.TrimSpace(s.Product+" "+s.Version+" "+s.ExtraInfo))
		}
		c.add("device type reported on "+port, s.DeviceType)
		for _, sc := range s.Scripts {
			c.add(sc.ID+" on "+port, sc.Output)
		}
	}
	for _, sc := range h.Scripts {
		c.add(sc.ID, sc.Output)
	}
	if len(h.OS) > 0 {
		c.add("the OS fingerprint", h.OS[0].Name)
	}
	c.add("SNMP sysDescr", h.SysDescr)
	if len(h.Attributes) > 0 {
		keys := make([]string, 0, len(h.Attributes))
		for k := range h.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			c.add("attribute "+k, h.Attributes[k])
		}
	}
}

func round2(f float64) float64 {
	return float64(int(f*100+0.5)) / 100
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
func gatherRole(s *Service, port string, e *evidence) {
	name := strings.ToLower(s.Name)
	if !desktopServices[name] {
		e.notable++
		if e.notableWhat == "" {
			e.notableWhat = name + " on " + port
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
		e.add(DatabaseServer, w, fmt.Sprintf("%s listens on %s", what, port))
		return
	}

	web := strings.HasPrefix(name, "http") || name == "https" ||
		name == "ssl/http" || name == "https-alt"
	switch {
	case !web, winRMPorts[s.Port], containsFold(s.Product, "microsoft httpapi"):
		return
	case s.Product != "":
		e.add(WebServer, 0.75, fmt.Sprintf("%s serves the web on %s",
			strings.TrimSpace(s.Product+" "+s.Version), port))
	default:
		e.add(WebServer, 0.6, fmt.Sprintf("a web server answers on %s", port))
	}
}
