package classify

// Control is one HIPAA Security Rule standard (45 CFR Part 164, Subpart C) that watching
// a host produces evidence for.
type Control struct {
	// ID is the section, for example "164.312(b)".
	ID string
	// Name is the standard's title, for example "Audit controls".
	Name string
}

// The Security Rule standards a type can be evidence for.
var (
	ControlRiskAnalysis        = Control{"164.308(a)(1)(ii)(A)", "Risk analysis"}
	ControlContingencyPlan     = Control{"164.308(a)(7)", "Contingency plan"}
	ControlFacilityAccess      = Control{"164.310(a)(1)", "Facility access controls"}
	ControlWorkstationUse      = Control{"164.310(b)", "Workstation use"}
	ControlWorkstationSecurity = Control{"164.310(c)", "Workstation security"}
	ControlDeviceMedia         = Control{"164.310(d)(1)", "Device and media controls"}
	ControlAccess              = Control{"164.312(a)(1)", "Access control"}
	ControlAudit               = Control{"164.312(b)", "Audit controls"}
	ControlIntegrity           = Control{"164.312(c)(1)", "Integrity"}
	ControlAuthentication      = Control{"164.312(d)", "Person or entity authentication"}
	ControlTransmission        = Control{"164.312(e)(1)", "Transmission security"}
)

var (
	serverControls = []Control{ControlAccess, ControlAudit, ControlIntegrity,
		ControlAuthentication, ControlTransmission}
	networkControls  = []Control{ControlTransmission, ControlAudit}
	clinicalControls = append(append([]Control(nil), serverControls...),
		ControlContingencyPlan)
	storageControls = append(append([]Control(nil), serverControls...),
		ControlContingencyPlan)
)

// controlsByType maps each type to the standards watching it is evidence for. Servers
// show who reached data and whether it changed; network gear shows how data travels;
// storage, power and clinical systems also show the practice can keep running.
var controlsByType = map[Type][]Control{
	LinuxServer:        serverControls,
	WindowsServer:      serverControls,
	DomainController:   serverControls,
	DatabaseServer:     serverControls,
	WebServer:          serverControls,
	Hypervisor:         storageControls,
	NASStorage:         storageControls,
	NetworkSwitch:      networkControls,
	Router:             networkControls,
	Firewall:           {ControlTransmission, ControlAudit, ControlAccess},
	VPNGateway:         {ControlTransmission, ControlAudit, ControlAuthentication},
	WirelessAP:         networkControls,
	UPS:                {ControlContingencyPlan},
	Workstation:        {ControlWorkstationUse, ControlWorkstationSecurity},
	Printer:            {ControlDeviceMedia},
	IPPhone:            {ControlTransmission},
	IPCamera:           {ControlFacilityAccess},
	EHRServer:          clinicalControls,
	PACSServer:         clinicalControls,
	HL7InterfaceEngine: clinicalControls,
	DICOMModality:      clinicalControls,
	MedicalDevice:      clinicalControls,
	Unknown:            {ControlRiskAnalysis},
}

// ControlsOf returns the standards a host of type t is evidence for, as a fresh slice;
// nil for an unknown type.
func ControlsOf(t Type) []Control {
	return append([]Control(nil), controlsByType[t]...)
}
