package classify

import (
	"fmt"
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
	reason  string
	edition edition
	// editionReason explains the edition when it is known.
	editionReason string
	// generalPurpose is true when a fingerprint calls the host a general-purpose
	// computer, which makes port-only appliance evidence unlikely.
	generalPurpose bool
}

// consider records an OS signal when it is stronger than what is known.
func (o *osInfo) consider(f osFamily, w float64, reason string) {
	if f != osUnknown && w > o.weight {
		o.family, o.weight, o.reason = f, w, reason
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
	word   string
	family osFamily
}{
	{"windows", osWindows},
	{"mac os", osMac}, {"macos", osMac}, {"os x", osMac}, {"darwin", osMac},
	{"ios", osMobile}, {"android", osMobile},
	{"linux", osLinux}, {"ubuntu", osLinux}, {"debian", osLinux}, {"centos", osLinux},
	{"red hat", osLinux}, {"rhel", osLinux}, {"rocky", osLinux}, {"almalinux", osLinux},
	{"suse", osLinux}, {"fedora", osLinux}, {"alpine", osLinux},
	{"freebsd", osUnix}, {"openbsd", osUnix}, {"netbsd", osUnix}, {"solaris", osUnix},
	{"aix", osUnix}, {"unix", osUnix},
}

// familyOf guesses an OS family from free text such as a fingerprint name.
func familyOf(text string) osFamily {
	if text == "" {
		return osUnknown
	}
	lower := strings.ToLower(text)
	for _, fw := range familyWords {
		if strings.Contains(lower, fw.word) {
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
		o.consider(familyOf(line), 0.9, fmt.Sprintf("smb-os-discovery reports %q", line))
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
		o.consider(f, 0.85*acc, fmt.Sprintf("OS fingerprint %q (%d%%)", m.Name, m.Accuracy))
		o.considerEdition(m.Name, "the OS fingerprint")
		if strings.EqualFold(m.DeviceType, "general purpose") && acc >= 0.8 && f != osUnknown {
			o.generalPurpose = true
		}
	}

	if h.SysDescr != "" {
		o.consider(familyOf(h.SysDescr), 0.8, fmt.Sprintf("SNMP sysDescr %q", clip(h.SysDescr)))
		o.considerEdition(h.SysDescr, "SNMP sysDescr")
	}

	for i := range h.Services {
		gatherServiceOS(&o, &h.Services[i])
	}
	return o
}

// gatherServiceOS takes OS hints from what version detection saw on one port. Reasons
// are only formatted for signals stronger than what is known.
func gatherServiceOS(o *osInfo, s *Service) {
	if s.Product == "" && s.OSType == "" && s.Version == "" && s.ExtraInfo == "" {
		return
	}
	microsoft := containsFold(s.Product, "microsoft ")
	switch {
	case !microsoft:
	case containsFold(s.Product, "microsoft windows rpc"),
		containsFold(s.Product, "microsoft terminal service"),
		containsFold(s.Product, "microsoft windows netbios"):
		if o.weight < 0.7 {
			o.consider(osWindows, 0.7, fmt.Sprintf("%q on %s", s.Product, portName(s)))
		}
	case containsFold(s.Product, "microsoft iis"):
		if o.weight < 0.65 {
			o.consider(osWindows, 0.65, fmt.Sprintf("%q on %s", s.Product, portName(s)))
		}
		if o.edition == editionUnknown {
			o.edition, o.editionReason = editionServer, "IIS serves "+portName(s)
		}
	}
	if s.OSType != "" && o.weight < 0.6 {
		o.consider(familyOf(s.OSType), 0.6, fmt.Sprintf(
			"version detection on %s reports %s", portName(s), s.OSType))
	}
	if (s.Version != "" || s.ExtraInfo != "") && o.weight < 0.55 &&
		familyOf(s.Version+" "+s.ExtraInfo) == osLinux {
		o.consider(osLinux, 0.55, fmt.Sprintf("%q on %s is a Linux build", s.Product,
			portName(s)))
	}
}

// smbOSLine returns the "OS:" line of smb-os-discovery output, or the whole output.
func smbOSLine(out string) string {
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "OS:"); ok {
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
