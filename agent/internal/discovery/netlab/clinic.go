package netlab

import (
	"testing"
)

// Clinic is a small clinic network: a scanned subnet with the devices discovery must
// find, a passive-only subnet with one quiet device, and a collector namespace on both.
type Clinic struct {
	*Lab

	Collector string // namespace of the collector (eth0 on Scanned, eth1 on Passive)

	// Namespaces of the devices.
	Switch, Server, Modality, EHR, HL7, Excluded, Quiet string

	// Hub-side interfaces, for captures.
	PassiveBridge  string            // the passive subnet's bridge
	ExcludedLink   string            // the excluded host's link
	CollectorLinkP string            // the collector's link on the passive subnet
	MACs           map[string]string // namespace -> MAC of its device interface
	AuthorizedKeys string            // authorized_keys path of the Server's sshd
	ServerHostKey  string            // public host key path of the Server's sshd
	ServerHost     Host              // the Server as an isolated host (its own /etc, /usr...)
}

// Addresses and credentials of the clinic.
const (
	ScannedSubnet = "10.77.1.0/24"
	PassiveSubnet = "10.77.2.0/24"

	CollectorAddr  = "10.77.1.2"
	CollectorAddrP = "10.77.2.2"
	SwitchAddr     = "10.77.1.10" // snmpd v2c+v3 claiming to be a Cisco switch
	ServerAddr     = "10.77.1.20" // sshd (Linux server)
	ModalityAddr   = "10.77.1.30" // dcmtk storescp on 104
	EHRAddr        = "10.77.1.40" // web server titled "OpenEMR Login"
	HL7Addr        = "10.77.1.50" // HL7 MLLP stand-in on 2575
	ExcludedAddr   = "10.77.1.99" // web server the site excludes
	QuietAddr      = "10.77.2.10" // passive-only subnet; web server, periodic traffic

	// ControllerName resolves to CollectorAddr on the Server (its /etc/hosts), for tests
	// that run a controller in the collector's namespace.
	ControllerName = "controller.clinic.test"

	SNMPCommunity = "clinic-ro"
	SNMPUser      = "wardpoll"
	SNMPAuthPass  = "lab-auth-pass-1"
	SNMPPrivPass  = "lab-priv-pass-1"
	SwitchName    = "sw-frontdesk"
	SwitchDescr   = "Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), " +
		"Version 15.2(7)E4, RELEASE SOFTWARE (fc2)"
	SwitchObjectID = ".1.3.6.1.4.1.9.1.1208"
	EHRTitle       = "OpenEMR Login"
	ModalityAET    = "CT_SCANNER_1"
)

// NewClinic builds the clinic network and starts its services, or skips the test when
// the machine cannot (not root, a tool missing).
func NewClinic(t testing.TB) *Clinic {
	t.Helper()
	l := New(t)
	c := &Clinic{Lab: l, MACs: map[string]string{}}
	l.Bridge("bra")
	l.Bridge("brp")
	c.PassiveBridge = "brp"

	c.Collector = l.Namespace("collector")
	l.Attach(c.Collector, "eth0", "bra", CollectorAddr+"/24")
	c.CollectorLinkP = l.Attach(c.Collector, "eth1", "brp", CollectorAddrP+"/24")
	c.MACs[c.Collector] = l.MAC(c.Collector, "eth0")

	host := func(name, addr, bridge string) (string, string) {
		ns := l.Namespace(name)
		link := l.Attach(ns, "eth0", bridge, addr+"/24")
		c.MACs[ns] = l.MAC(ns, "eth0")
		return ns, link
	}
	c.Switch, _ = host("switch", SwitchAddr, "bra")
	c.Server, _ = host("server", ServerAddr, "bra")
	c.Modality, _ = host("modality", ModalityAddr, "bra")
	c.EHR, _ = host("ehr", EHRAddr, "bra")
	c.HL7, _ = host("hl7", HL7Addr, "bra")
	c.Excluded, c.ExcludedLink = host("excluded", ExcludedAddr, "bra")
	c.Quiet, _ = host("quiet", QuietAddr, "brp")

	l.StartSNMPD(c.Switch, SNMPAgent{Addr: SwitchAddr, Community: SNMPCommunity,
		User: SNMPUser, AuthPass: SNMPAuthPass, PrivPass: SNMPPrivPass, Name: SwitchName,
		Descr: SwitchDescr, ObjectID: SwitchObjectID})
	c.AuthorizedKeys = l.Dir() + "/authorized_keys"
	c.ServerHost, c.ServerHostKey = l.StartSSHDHost(c.Server, ServerAddr, c.AuthorizedKeys,
		"127.0.0.1 localhost\n"+CollectorAddr+" "+ControllerName+"\n")
	l.StartStorescp(c.Modality, "104", ModalityAET)
	l.StartHTTP(c.EHR, EHRAddr+":80", EHRTitle, "Apache/2.4.57 (Debian)")
	l.StartMLLP(c.HL7, HL7Addr+":2575")
	l.StartHTTP(c.Excluded, ExcludedAddr+":80", "Excluded Device", "")
	l.StartHTTP(c.Quiet, QuietAddr+":80", "Infusion Pump Gateway", "")
	l.StartChatter(c.Quiet, "10.77.2.254:9")
	return c
}
