package classify

// Host is what discovery observed about one device: the input to Classify. Every field
// may be empty; Classify uses what is there. Classify does not modify a Host.
type Host struct {
	// IP is the address the host was seen at.
	IP string
	// MAC is the hardware address, in any common notation ("44:4b:5d:01:02:03",
	// "44-4B-5D-01-02-03", "444b.5d01.0203"); empty when unknown (beyond a router).
	MAC string
	// Vendor is the MAC vendor as discovery reported it. When empty, Classify looks the
	// MAC prefix up in its vendor table.
	Vendor string
	// Hostname is the DNS, mDNS, NetBIOS or SNMP name.
	Hostname string
	// OS holds operating system fingerprint matches, best first.
	OS []OSMatch
	// Services holds the open ports.
	Services []Service
	// SysDescr and SysObjectID are the SNMP system group's self-description.
	SysDescr    string
	SysObjectID string
	// Scripts holds host-level script output (for example smb-os-discovery).
	Scripts []Script
	// Attributes holds further method-specific facts (for example mDNS service types);
	// their values are searched for product names like any other text.
	Attributes map[string]string
}

// OSMatch is one operating system fingerprint match.
type OSMatch struct {
	// Name as the fingerprint database spells it, for example "Linux 5.0 - 5.14".
	Name string
	// Accuracy in percent, 0 when unknown.
	Accuracy int
	// Vendor, Family and Generation of the OS, for example "Microsoft", "Windows", "10".
	Vendor, Family, Generation string
	// DeviceType is the fingerprint's device class, for example "general purpose",
	// "switch", "printer", "WAP", "webcam", "VoIP phone", "storage-misc".
	DeviceType string
}

// Service is one open port and what answered on it.
type Service struct {
	Port     int
	Protocol string // "tcp" or "udp"
	// Name is the service name, for example "ssh", "http", "dicom", "acr-nema".
	Name string
	// Product, Version and ExtraInfo are what version detection found.
	Product, Version, ExtraInfo string
	// OSType and DeviceType are version detection's hints about the host.
	OSType, DeviceType string
	// Tunnel is "ssl" when the service speaks TLS.
	Tunnel string
	// Scripts holds script output on this port (http-title, ssl-cert, dicom-ping, banner,
	// snmp-sysdescr, ...).
	Scripts []Script
}

// Script is the output of one scan script.
type Script struct {
	ID     string
	Output string
}

// Result is the decision about one host.
type Result struct {
	Type          Type
	Tier          Tier
	ShouldMonitor bool
	Strategy      Strategy
	Enrollment    Enrollment
	// Confidence is between 0 and 1.
	Confidence float64
	// Reasons are the evidence behind the decision, in words a technician can check,
	// strongest first. Never empty.
	Reasons []string
	// Controls are the HIPAA Security Rule standards watching the host is evidence for.
	Controls []Control
	// Vendor is the MAC vendor used (reported or looked up); empty when unknown.
	Vendor string
	// Clinical is true when any clinical evidence was seen, whatever type won.
	Clinical bool
}
