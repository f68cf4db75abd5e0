package classify

import (
	"bytes"
	"strconv"
	"strings"
)

// osFamily is the operating system family a host runs.
type osFamily int

const (
	osUnknown osFamily = iota
	osWindows
	osLinux
	osUnix // BSD, Solaris, AIX and other Unix-like server systems
	osMac
	osMobile
)

func (f osFamily) String() string {
	return [...]string{"unknown", "Windows", "Linux", "Unix", "macOS", "mobile"}[f]
}

// edition says whether the OS is a server or a client edition.
type edition int

const (
	editionUnknown edition = iota
	editionServer
	editionClient
)

// osInfo is the best guess at a host's operating system.
type osInfo struct {
	family  osFamily
	weight  float64
	why     osReason
	edition edition
	// editionReason explains the edition when it is known.
	editionReason string
	// generalPurpose is true when a fingerprint calls the host a general-purpose
	// computer, which makes port-only appliance evidence unlikely.
	generalPurpose bool
}

// osReason is the evidence behind an OS guess, put into words only when shown.
type osReason struct {
	kind osReasonKind
	text string
	svc  *Service
	n    int
}

type osReasonKind uint8

const (
	osBySMB osReasonKind = iota
	osByFingerprint
	osBySysDescr
	osByProduct
	osByOSType
	osByBuild
)

func (r osReason) String() string {
	switch r.kind {
	case osBySMB:
		return "smb-os-discovery reports " + strconv.Quote(r.text)
	case osByFingerprint:
		return "OS fingerprint " + strconv.Quote(r.text) + " (" + strconv.Itoa(r.n) + "%)"
	case osBySysDescr:
		return "SNMP sysDescr " + strconv.Quote(clip(r.text))
	case osByProduct:
		return strconv.Quote(r.text) + " on " + portName(r.svc)
	case osByOSType:
		return "version detection on " + portName(r.svc) + " reports " + r.text
	}
	return strconv.Quote(r.text) + " on " + portName(r.svc) + " is a Linux build"
}

// reason puts the evidence for the OS guess into words.
func (o *osInfo) reason() string { return o.why.String() }

// consider records an OS signal when it is stronger than what is known.
func (o *osInfo) consider(f osFamily, w float64, why osReason) {
	if f != osUnknown && w > o.weight {
		o.family, o.weight, o.why = f, w, why
	}
}

// clientEditions are Windows client editions.
var clientEditions = []string{"windows 10", "windows 11", "windows 7", "windows 8",
	"windows xp", "windows vista"}

// considerEdition records a server or client edition named in text.
func (o *osInfo) considerEdition(text, where string) {
	if o.edition != editionUnknown {
		return
	}
	if !containsFold(text, "windows") {
		return
	}
	server := containsFold(text, "windows server") || containsFold(text, "server 20")
	client := false
	for _, w := range clientEditions {
		if containsFold(text, w) {
			client = true
		}
	}
	switch {
	case server && !client:
		o.edition, o.editionReason = editionServer, where+" names a Windows server edition"
	case client && !server:
		o.edition, o.editionReason = editionClient, where+" names a Windows client edition"
	}
}

// familyWords maps words in free text (a fingerprint name, a banner) to OS families,
// checked in order.
var familyWords = []struct {
	word   []byte
	family osFamily
}{
	{[]byte("windows"), osWindows},
	{[]byte("mac os"), osMac}, {[]byte("macos"), osMac}, {[]byte("os x"), osMac}, {[]byte("darwin"), osMac},
	{[]byte("cisco ios"), osUnknown}, {[]byte("ios "), osMobile}, {[]byte("ipados"), osMobile}, {[]byte("android"), osMobile},
	{[]byte("linux"), osLinux}, {[]byte("ubuntu"), osLinux}, {[]byte("debian"), osLinux}, {[]byte("centos"), osLinux},
	{[]byte("red hat"), osLinux}, {[]byte("rhel"), osLinux}, {[]byte("rocky"), osLinux}, {[]byte("almalinux"), osLinux},
	{[]byte("suse"), osLinux}, {[]byte("fedora"), osLinux}, {[]byte("alpine"), osLinux},
	{[]byte("freebsd"), osUnix}, {[]byte("openbsd"), osUnix}, {[]byte("netbsd"), osUnix}, {[]byte("solaris"), osUnix},
	{[]byte("aix"), osUnix}, {[]byte("unix"), osUnix},
}

// familyOf guesses an OS family from free text such as a fingerprint name.
func familyOf(text string) osFamily {
	if text == "" {
		return osUnknown
	}
	var buf [256]byte
	lower := buf[:0]
	for i := 0; i < len(text) && i < len(buf); i++ {
		c := text[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower = append(lower, c)
	}
	for _, fw := range familyWords {
		if bytes.Contains(lower, fw.word) {
			return fw.family
		}
	}
	return osUnknown
}

// gatherOS combines fingerprints, SMB, SNMP and service hints into one OS guess.
func gatherOS(h *Host) osInfo {
	var o osInfo
	for _, s := range h.Scripts {
		if s.ID != "smb-os-discovery" {
			continue
		}
		line := smbOSLine(s.Output)
		o.consider(familyOf(line), 0.9, osReason{kind: osBySMB, text: line})
		o.considerEdition(line, "smb-os-discovery")
	}

	if len(h.OS) > 0 {
		m := h.OS[0]
		acc := float64(m.Accuracy) / 100
		if m.Accuracy == 0 {
			acc = 0.6
		}
		f := familyOf(m.Family + " " + m.Name)
		if strings.EqualFold(m.DeviceType, "phone") {
			f = osMobile
		}
		o.consider(f, 0.85*acc, osReason{kind: osByFingerprint, text: m.Name, n: m.Accuracy})
		o.considerEdition(m.Name, "the OS fingerprint")
		if strings.EqualFold(m.DeviceType, "general purpose") && acc >= 0.8 && f != osUnknown {
			o.generalPurpose = true
		}
	}

	if h.SysDescr != "" {
		o.consider(familyOf(h.SysDescr), 0.8, osReason{kind: osBySysDescr, text: h.SysDescr})
		o.considerEdition(h.SysDescr, "SNMP sysDescr")
	}

	for i := range h.Services {
		gatherServiceOS(&o, &h.Services[i])
	}
	return o
}

// gatherServiceOS takes OS hints from what version detection saw on one port.
func gatherServiceOS(o *osInfo, s *Service) {
	if s.Product == "" && s.OSType == "" && s.Version == "" && s.ExtraInfo == "" {
		return
	}
	microsoft := containsFold(s.Product, "microsoft ")
	byProduct := osReason{kind: osByProduct, text: s.Product, svc: s}
	switch {
	case !microsoft:
	case containsFold(s.Product, "microsoft windows rpc"),
		containsFold(s.Product, "microsoft terminal service"),
		containsFold(s.Product, "microsoft windows netbios"):
		o.consider(osWindows, 0.7, byProduct)
	case containsFold(s.Product, "microsoft iis"):
		o.consider(osWindows, 0.65, byProduct)
		if o.edition == editionUnknown {
			o.edition, o.editionReason = editionServer, "IIS serves "+portName(s)
		}
	}
	if s.OSType != "" && o.weight < 0.6 {
		o.consider(familyOf(s.OSType), 0.6, osReason{kind: osByOSType, text: s.OSType, svc: s})
	}
	if (s.Version != "" || s.ExtraInfo != "") && o.weight < 0.55 &&
		(familyOf(s.Version) == osLinux || familyOf(s.ExtraInfo) == osLinux) {
		o.consider(osLinux, 0.55, osReason{kind: osByBuild, text: s.Product, svc: s})
	}
}

// smbOSLine returns the "OS:" line of smb-os-discovery output, or the whole output.
func smbOSLine(out string) string {
	for rest := out; rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "OS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return strings.TrimSpace(out)
}

// clip shortens s for a reason.
func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

func portName(s *Service) string {
	proto := s.Protocol
	if proto == "" {
		proto = "tcp"
	}
	return strconv.Itoa(s.Port) + "/" + proto
}
