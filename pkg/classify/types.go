// Package classify decides what a discovered host is, how much care it needs and how Ward
// watches it. Classify is a pure function of what discovery observed (open services, OS
// fingerprints, SNMP self-description, MAC vendor), so a saved scan can be classified
// offline and the same input always gives the same answer.
//
// The decision follows a fixed precedence: clinical evidence first, then dedicated
// appliances, then directory services, then the server's role, then the operating system.
// A host with clinical evidence is always given a clinical type, which is never probed
// actively and never enrolled without a person's approval.
package classify

// Type names what a host is. The zero value is not a valid type; Classify returns
// Unknown when nothing identifies the host.
type Type string

// The device types. Their tier, watching strategy, default monitoring and enrollment mode
// are fixed by ProfileOf.
const (
	LinuxServer        Type = "linux_server"
	WindowsServer      Type = "windows_server"
	DomainController   Type = "domain_controller"
	Hypervisor         Type = "hypervisor"
	NASStorage         Type = "nas_storage"
	NetworkSwitch      Type = "network_switch"
	Router             Type = "router"
	Firewall           Type = "firewall"
	VPNGateway         Type = "vpn_gateway"
	WirelessAP         Type = "wireless_ap"
	UPS                Type = "ups"
	DatabaseServer     Type = "database_server"
	WebServer          Type = "web_server"
	Workstation        Type = "workstation"
	Printer            Type = "printer"
	IPPhone            Type = "ip_phone"
	IPCamera           Type = "ip_camera"
	EHRServer          Type = "ehr_server"
	PACSServer         Type = "pacs_server"
	HL7InterfaceEngine Type = "hl7_interface_engine"
	DICOMModality      Type = "dicom_modality"
	MedicalDevice      Type = "medical_device"
	Unknown            Type = "unknown"
)

// Strategy is how Ward watches a host once it is known.
type Strategy string

// The watching strategies.
const (
	// StrategyAgent: a Ward agent runs on the host.
	StrategyAgent Strategy = "agent"
	// StrategySNMP: the collector polls the host over SNMP.
	StrategySNMP Strategy = "snmp"
	// StrategyPassive: the host is never actively probed after discovery; it is watched
	// only from the traffic it sends.
	StrategyPassive Strategy = "passive"
	// StrategyNone: the host is listed in the inventory and not watched.
	StrategyNone Strategy = "none"
)

// Enrollment says whether Ward may start watching a host on its own.
type Enrollment string

// The enrollment modes.
const (
	// EnrollAuto: Ward starts watching the host without asking (for agent hosts, the
	// collector bootstraps the agent over SSH).
	EnrollAuto Enrollment = "auto"
	// EnrollManual: a person approves the host first.
	EnrollManual Enrollment = "manual"
	// EnrollNone: the host is not enrolled at all.
	EnrollNone Enrollment = "none"
)

// Tier is how much care a host needs: 1 infrastructure, 2 applications and end-user
// gear, 3 clinical systems, where a mistake can reach a patient.
type Tier int

// Profile is the fixed treatment of one type.
type Profile struct {
	Type          Type
	Tier          Tier
	Strategy      Strategy
	ShouldMonitor bool // monitored by default
	Enrollment    Enrollment
}

// profiles is the default treatment of every type, in the order Types lists them.
var profiles = []Profile{
	{LinuxServer, 1, StrategyAgent, true, EnrollAuto},
	{WindowsServer, 1, StrategyAgent, true, EnrollAuto},
	{DomainController, 1, StrategyAgent, true, EnrollAuto},
	{Hypervisor, 1, StrategySNMP, true, EnrollAuto},
	{NASStorage, 1, StrategySNMP, true, EnrollAuto},
	{NetworkSwitch, 1, StrategySNMP, true, EnrollAuto},
	{Router, 1, StrategySNMP, true, EnrollAuto},
	{Firewall, 1, StrategySNMP, true, EnrollAuto},
	{VPNGateway, 1, StrategySNMP, true, EnrollAuto},
	{WirelessAP, 1, StrategySNMP, true, EnrollAuto},
	{UPS, 1, StrategySNMP, true, EnrollAuto},
	{DatabaseServer, 2, StrategyAgent, true, EnrollAuto},
	{WebServer, 2, StrategyAgent, true, EnrollAuto},
	{Workstation, 2, StrategyNone, false, EnrollNone},
	{Printer, 2, StrategyNone, false, EnrollNone},
	{IPPhone, 2, StrategyNone, false, EnrollNone},
	{IPCamera, 2, StrategyNone, false, EnrollNone},
	{EHRServer, 3, StrategyAgent, true, EnrollManual},
	{PACSServer, 3, StrategyAgent, true, EnrollManual},
	{HL7InterfaceEngine, 3, StrategyAgent, true, EnrollManual},
	{DICOMModality, 3, StrategyPassive, true, EnrollManual},
	{MedicalDevice, 3, StrategyPassive, true, EnrollManual},
	{Unknown, 2, StrategyNone, false, EnrollManual},
}

var profileByType = func() map[Type]Profile {
	m := make(map[Type]Profile, len(profiles))
	for _, p := range profiles {
		m[p.Type] = p
	}
	return m
}()

// Types returns every type, in the order of the classification table. The slice is a
// fresh copy.
func Types() []Type {
	out := make([]Type, len(profiles))
	for i, p := range profiles {
		out[i] = p.Type
	}
	return out
}

// ProfileOf returns the default treatment of t, and false when t is not a known type.
func ProfileOf(t Type) (Profile, bool) {
	p, ok := profileByType[t]
	return p, ok
}

// Valid reports whether t is one of the known types.
func (t Type) Valid() bool {
	_, ok := profileByType[t]
	return ok
}

// Clinical reports whether t is a clinical type (tier 3).
func (t Type) Clinical() bool {
	return profileByType[t].Tier == 3
}

// ActivelyTouched reports whether Ward, by default, reaches out to a host of type t on
// its own: polling it over SNMP, or enrolling it (installing an agent) without approval.
// No host with clinical evidence may ever be given such a type.
func (t Type) ActivelyTouched() bool {
	p := profileByType[t]
	return p.Strategy == StrategySNMP || p.Enrollment == EnrollAuto
}
