package classify

// This file holds the evidence tables: product names and words found in what hosts say
// about themselves, MAC vendors, SNMP enterprise numbers and fingerprint device classes.
// Weights are the confidence one piece of evidence gives on its own, between 0 and 1.

// keyword is a lower-case word or phrase searched for in a host's text (service products,
// script output, fingerprint names, SNMP sysDescr, attributes) or in its MAC vendor.
type keyword struct {
	word   string
	typ    Type
	weight float64
	// whole requires the match to stand alone (no letter or digit on either side).
	whole bool
}

// Clinical pseudo-types used while gathering evidence; resolveClinical turns them into
// one of the clinical types.
const (
	sigDICOM   Type = "dicom service"        // a DICOM service answered
	sigMedical Type = "medical manufacturer" // a medical device vendor or product
	// sigViewer is a word that makes a DICOM host an image store; alone it means nothing.
	sigViewer Type = "image viewer"
)

// textKeywords are searched in everything the host said about itself.
var textKeywords = []keyword{
	// PACS and image archives.
	{"orthanc", PACSServer, 0.9, false},
	{"dcm4chee", PACSServer, 0.9, false},
	{"conquest dicom", PACSServer, 0.9, false},
	{"clearcanvas", PACSServer, 0.9, false},
	{"pacs", PACSServer, 0.8, true},
	{"dicom viewer", PACSServer, 0.85, false},
	{"dicom web", PACSServer, 0.8, false},
	{"dicomweb", PACSServer, 0.8, false},
	{"ohif", PACSServer, 0.85, true},
	{"osirix", PACSServer, 0.9, false},
	{"weasis", PACSServer, 0.85, false},
	{"intellispace", PACSServer, 0.85, false},
	{"enterprise imaging", PACSServer, 0.8, false},
	{"postdicom", PACSServer, 0.9, false},
	{"image archive", PACSServer, 0.8, false},
	{"dicom archive", PACSServer, 0.85, false},

	// Electronic health records and practice management.
	{"openemr", EHRServer, 0.9, false},
	{"openmrs", EHRServer, 0.9, false},
	{"eclinicalworks", EHRServer, 0.9, false},
	{"nextgen healthcare", EHRServer, 0.8, false},
	{"nextgen office", EHRServer, 0.85, false},
	{"nextgen enterprise", EHRServer, 0.85, false},
	{"intergy", EHRServer, 0.85, true},
	{"allscripts", EHRServer, 0.85, false},
	{"practice fusion", EHRServer, 0.85, false},
	{"meditech", EHRServer, 0.9, false},
	{"cerner", EHRServer, 0.8, true},
	{"dentrix", EHRServer, 0.9, false},
	{"eaglesoft", EHRServer, 0.9, false},
	{"open dental", EHRServer, 0.9, false},
	{"opendental", EHRServer, 0.9, false},
	{"amazing charts", EHRServer, 0.9, false},
	{"chartlogic", EHRServer, 0.9, false},
	{"prognocis", EHRServer, 0.9, false},
	{"curemd", EHRServer, 0.9, false},
	{"advancedmd", EHRServer, 0.85, false},
	{"gnu health", EHRServer, 0.9, false},
	{"oscar emr", EHRServer, 0.9, false},
	{"centricity practice", EHRServer, 0.9, false},
	{"centricity emr", EHRServer, 0.9, false},
	{"electronic health record", EHRServer, 0.8, false},
	{"electronic medical record", EHRServer, 0.8, false},
	{"emr", EHRServer, 0.6, true},
	{"ehr", EHRServer, 0.6, true},
	{"patient portal", EHRServer, 0.6, false},

	// HL7 interface engines.
	{"mirth", HL7InterfaceEngine, 0.95, false},
	{"nextgen connect", HL7InterfaceEngine, 0.95, false},
	{"bridgelink", HL7InterfaceEngine, 0.9, false},
	{"rhapsody", HL7InterfaceEngine, 0.8, true},
	{"corepoint", HL7InterfaceEngine, 0.9, false},
	{"cloverleaf", HL7InterfaceEngine, 0.9, false},
	{"iguana", HL7InterfaceEngine, 0.8, true},
	{"interfaceware", HL7InterfaceEngine, 0.9, false},
	{"qvera", HL7InterfaceEngine, 0.9, false},
	{"healthshare", HL7InterfaceEngine, 0.8, false},
	{"hl7", HL7InterfaceEngine, 0.75, true},
	{"mllp", HL7InterfaceEngine, 0.8, true},

	// DICOM spoken by something, and words that make a DICOM host an image store.
	{"dicom", sigDICOM, 0.7, true},
	{"viewer", sigViewer, 0.6, true},
	{"imaging", sigViewer, 0.5, true},
	{"archive", sigViewer, 0.5, true},

	// Medical device makers and products.
	{"ge healthcare", sigMedical, 0.85, false},
	{"ge medical", sigMedical, 0.85, false},
	{"carescape", sigMedical, 0.9, false},
	{"datex-ohmeda", sigMedical, 0.9, false},
	{"philips medical", sigMedical, 0.85, false},
	{"philips healthcare", sigMedical, 0.85, false},
	{"intellivue", sigMedical, 0.9, false},
	{"siemens healthineers", sigMedical, 0.85, false},
	{"siemens healthcare", sigMedical, 0.85, false},
	{"syngo", sigMedical, 0.8, false},
	{"mindray", sigMedical, 0.85, false},
	{"draeger", sigMedical, 0.85, false},
	{"dräger", sigMedical, 0.85, false},
	{"baxter", sigMedical, 0.8, false},
	{"alaris", sigMedical, 0.9, true},
	{"carefusion", sigMedical, 0.85, false},
	{"welch allyn", sigMedical, 0.85, false},
	{"spacelabs", sigMedical, 0.9, false},
	{"masimo", sigMedical, 0.9, false},
	{"nihon kohden", sigMedical, 0.9, false},
	{"hospira", sigMedical, 0.9, false},
	{"medtronic", sigMedical, 0.85, false},
	{"carestream", sigMedical, 0.8, false},
	{"agfa healthcare", sigMedical, 0.85, false},
	{"hologic", sigMedical, 0.85, false},
	{"planmeca", sigMedical, 0.9, false},
	{"sirona", sigMedical, 0.85, false},
	{"dentsply", sigMedical, 0.85, false},
	{"vatech", sigMedical, 0.85, false},
	{"patient monitor", sigMedical, 0.9, false},
	{"infusion", sigMedical, 0.85, false},
	{"ventilator", sigMedical, 0.9, false},
	{"ultrasound", sigMedical, 0.8, false},
	{"x-ray", sigMedical, 0.7, false},
	{"radiograph", sigMedical, 0.75, false},
	{"modality", sigMedical, 0.7, true},

	// Firewalls.
	{"fortigate", Firewall, 0.95, false},
	{"fortios", Firewall, 0.95, false},
	{"fortinet", Firewall, 0.85, false},
	{"pan-os", Firewall, 0.95, false},
	{"palo alto networks", Firewall, 0.9, false},
	{"globalprotect", Firewall, 0.8, false},
	{"sonicwall", Firewall, 0.9, false},
	{"sonicos", Firewall, 0.95, false},
	{"pfsense", Firewall, 0.95, false},
	{"opnsense", Firewall, 0.95, false},
	{"watchguard", Firewall, 0.9, false},
	{"fireware", Firewall, 0.9, false},
	{"sophos", Firewall, 0.8, false},
	{"adaptive security appliance", Firewall, 0.95, false},
	{"cisco asa", Firewall, 0.9, false},
	{"firepower", Firewall, 0.9, false},
	{"check point", Firewall, 0.85, false},
	{"meraki mx", Firewall, 0.9, false},
	{"untangle", Firewall, 0.9, false},
	{"zyxel usg", Firewall, 0.9, false},
	{"firewall", Firewall, 0.7, true},

	// Remote-access appliances.
	{"pulse secure", VPNGateway, 0.9, false},
	{"pulse connect secure", VPNGateway, 0.95, false},
	{"ivanti connect secure", VPNGateway, 0.95, false},
	{"netscaler gateway", VPNGateway, 0.9, false},
	{"citrix gateway", VPNGateway, 0.9, false},
	{"openvpn access server", VPNGateway, 0.9, false},
	{"openvpn as", VPNGateway, 0.85, false},
	{"ssl vpn", VPNGateway, 0.6, false},
	{"sslvpn", VPNGateway, 0.6, false},
	{"vpn", VPNGateway, 0.5, true},

	// Routers.
	{"routeros", Router, 0.9, false},
	{"mikrotik", Router, 0.9, false},
	{"edgerouter", Router, 0.9, false},
	{"edgeos", Router, 0.9, false},
	{"vyos", Router, 0.9, false},
	{"integrated services router", Router, 0.9, false},
	{"isr4", Router, 0.85, false},
	{"draytek", Router, 0.85, false},
	{"router", Router, 0.75, true},

	// Switches.
	{"catalyst", NetworkSwitch, 0.9, false},
	{"c2960", NetworkSwitch, 0.9, false},
	{"cat9k", NetworkSwitch, 0.9, false},
	{"nx-os", NetworkSwitch, 0.9, false},
	{"procurve", NetworkSwitch, 0.9, false},
	{"ethernet switch", NetworkSwitch, 0.9, false},
	{"edgeswitch", NetworkSwitch, 0.95, false},
	{"unifi switch", NetworkSwitch, 0.95, false},
	{"powerconnect", NetworkSwitch, 0.9, false},
	{"dell networking", NetworkSwitch, 0.85, false},
	{"prosafe", NetworkSwitch, 0.85, false},
	{"switch", NetworkSwitch, 0.75, true},

	// Wireless access points.
	{"unifi ap", WirelessAP, 0.9, false},
	{"aironet", WirelessAP, 0.95, false},
	{"air-ap", WirelessAP, 0.9, false},
	{"meraki mr", WirelessAP, 0.9, false},
	{"ruckus", WirelessAP, 0.85, false},
	{"instant ap", WirelessAP, 0.9, false},
	{"access point", WirelessAP, 0.85, false},
	{"engenius", WirelessAP, 0.8, false},

	// Uninterruptible power supplies.
	{"ups", UPS, 0.8, true},
	{"smart-ups", UPS, 0.95, false},
	{"network management card", UPS, 0.9, false},
	{"american power conversion", UPS, 0.85, false},
	{"powerware", UPS, 0.85, false},
	{"network-m2", UPS, 0.9, false},
	{"tripp lite", UPS, 0.8, false},
	{"poweralert", UPS, 0.85, false},
	{"cyberpower", UPS, 0.8, false},
	{"rmcard", UPS, 0.9, false},
	{"liebert", UPS, 0.8, false},

	// Printers.
	{"jetdirect", Printer, 0.95, false},
	{"laserjet", Printer, 0.95, false},
	{"officejet", Printer, 0.95, false},
	{"pagewide", Printer, 0.9, false},
	{"printer", Printer, 0.85, false},
	{"print server", Printer, 0.8, false},
	{"lexmark", Printer, 0.9, false},
	{"xerox", Printer, 0.85, false},
	{"workcentre", Printer, 0.9, false},
	{"versalink", Printer, 0.9, false},
	{"ricoh", Printer, 0.8, false},
	{"kyocera", Printer, 0.8, false},
	{"ecosys", Printer, 0.85, false},
	{"bizhub", Printer, 0.9, false},
	{"imagerunner", Printer, 0.9, false},
	{"imageclass", Printer, 0.9, false},
	{"brother hl", Printer, 0.9, false},
	{"brother mfc", Printer, 0.9, false},
	{"zebranet", Printer, 0.9, false},

	// IP phones.
	{"soundpoint", IPPhone, 0.95, false},
	{"polycom", IPPhone, 0.8, false},
	{"vvx", IPPhone, 0.85, true},
	{"yealink", IPPhone, 0.9, false},
	{"grandstream", IPPhone, 0.8, false},
	{"cisco ip phone", IPPhone, 0.95, false},
	{"cisco spa", IPPhone, 0.9, false},
	{"snom", IPPhone, 0.85, true},
	{"sip phone", IPPhone, 0.9, false},
	{"ip phone", IPPhone, 0.9, false},
	{"voip phone", IPPhone, 0.9, false},

	// IP cameras.
	{"axis communications", IPCamera, 0.9, false},
	{"network camera", IPCamera, 0.95, false},
	{"ip camera", IPCamera, 0.95, false},
	{"hikvision", IPCamera, 0.9, false},
	{"dahua", IPCamera, 0.9, false},
	{"webcam", IPCamera, 0.8, false},
	{"vivotek", IPCamera, 0.9, false},
	{"mobotix", IPCamera, 0.9, false},
	{"wisenet", IPCamera, 0.9, false},
	{"amcrest", IPCamera, 0.9, false},
	{"reolink", IPCamera, 0.9, false},
	{"foscam", IPCamera, 0.9, false},
	{"camera", IPCamera, 0.7, true},

	// Storage.
	{"synology", NASStorage, 0.9, false},
	{"diskstation", NASStorage, 0.95, false},
	{"qnap", NASStorage, 0.9, false},
	{"truenas", NASStorage, 0.95, false},
	{"freenas", NASStorage, 0.95, false},
	{"readynas", NASStorage, 0.95, false},
	{"terramaster", NASStorage, 0.9, false},
	{"asustor", NASStorage, 0.9, false},
	{"linkstation", NASStorage, 0.9, false},
	{"terastation", NASStorage, 0.9, false},
	{"data ontap", NASStorage, 0.95, false},
	{"netapp", NASStorage, 0.85, false},
	{"openmediavault", NASStorage, 0.9, false},
	{"unraid", NASStorage, 0.9, false},
	{"network attached storage", NASStorage, 0.9, false},
	{"nas", NASStorage, 0.6, true},

	// Hypervisors.
	{"vmware esxi", Hypervisor, 0.95, false},
	{"esxi", Hypervisor, 0.9, true},
	{"vmware authentication daemon", Hypervisor, 0.9, false},
	{"vsphere", Hypervisor, 0.8, false},
	{"proxmox", Hypervisor, 0.9, false},
	{"xenserver", Hypervisor, 0.9, false},
	{"xcp-ng", Hypervisor, 0.9, false},
	{"citrix hypervisor", Hypervisor, 0.9, false},
	{"hyper-v server", Hypervisor, 0.85, false},
	{"nutanix", Hypervisor, 0.85, false},
}

// vendorKeywords are searched in the MAC vendor name. A vendor alone is weaker evidence
// than the device's own words, except for medical makers: for safety, a device from a
// medical maker is treated as clinical even when nothing else is known.
var vendorKeywords = []keyword{
	{"medical", sigMedical, 0.8, true},
	{"healthcare", sigMedical, 0.8, true},
	{"health care", sigMedical, 0.8, false},
	{"carestream health", sigMedical, 0.8, false},
	{"baxter", sigMedical, 0.8, false},
	{"alaris", sigMedical, 0.85, true},
	{"carefusion", sigMedical, 0.85, false},
	{"mindray", sigMedical, 0.85, false},
	{"welch allyn", sigMedical, 0.85, false},
	{"nihon kohden", sigMedical, 0.85, false},
	{"medtronic", sigMedical, 0.85, false},
	{"masimo", sigMedical, 0.85, false},
	{"fresenius", sigMedical, 0.8, false},
	{"hill-rom", sigMedical, 0.8, false},
	{"stryker", sigMedical, 0.7, false},
	{"karl storz", sigMedical, 0.85, false},
	{"esaote", sigMedical, 0.85, false},
	{"planmeca", sigMedical, 0.85, false},
	{"sirona", sigMedical, 0.85, false},
	{"dentsply", sigMedical, 0.85, false},
	{"zoll", sigMedical, 0.8, true},

	{"fortinet", Firewall, 0.6, false},
	{"palo alto networks", Firewall, 0.6, false},
	{"sonicwall", Firewall, 0.6, false},
	{"watchguard technologies", Firewall, 0.6, false},
	{"sophos", Firewall, 0.5, false},
	{"check point", Firewall, 0.5, false},
	{"barracuda", Firewall, 0.5, false},

	{"routerboard", Router, 0.6, false},
	{"juniper", Router, 0.35, false},
	{"draytek", Router, 0.5, false},

	{"cisco systems", NetworkSwitch, 0.3, false},
	{"arista", NetworkSwitch, 0.5, false},
	{"extreme networks", NetworkSwitch, 0.5, false},
	{"netgear", NetworkSwitch, 0.3, false},

	{"aruba", WirelessAP, 0.5, false},
	{"ubiquiti", WirelessAP, 0.5, false},
	{"ruckus", WirelessAP, 0.6, false},
	{"cisco meraki", WirelessAP, 0.4, false},
	{"cambium", WirelessAP, 0.5, false},

	{"american power conversion", UPS, 0.6, false},
	{"schneider electric", UPS, 0.4, false},
	{"eaton", UPS, 0.5, true},
	{"tripp lite", UPS, 0.6, false},
	{"cyberpower", UPS, 0.6, false},

	{"brother industries", Printer, 0.6, false},
	{"lexmark", Printer, 0.6, false},
	{"xerox", Printer, 0.6, false},
	{"ricoh", Printer, 0.55, false},
	{"kyocera", Printer, 0.4, false},
	{"konica minolta", Printer, 0.5, false},
	{"seiko epson", Printer, 0.5, false},
	{"zebra technologies", Printer, 0.5, false},

	{"polycom", IPPhone, 0.6, false},
	{"yealink", IPPhone, 0.6, false},
	{"grandstream", IPPhone, 0.55, false},
	{"snom", IPPhone, 0.6, true},
	{"mitel", IPPhone, 0.5, true},
	{"avaya", IPPhone, 0.45, false},

	{"axis communications", IPCamera, 0.6, false},
	{"hikvision", IPCamera, 0.6, false},
	{"dahua", IPCamera, 0.6, false},
	{"vivotek", IPCamera, 0.6, false},
	{"mobotix", IPCamera, 0.6, false},
	{"hanwha", IPCamera, 0.55, false},

	{"synology", NASStorage, 0.6, false},
	{"qnap", NASStorage, 0.6, false},
	{"netapp", NASStorage, 0.6, false},
	{"buffalo", NASStorage, 0.4, false},
}

// virtualNICVendors are vendors whose prefixes mark a virtual machine's network card:
// the host is a guest, which makes a server more likely than a desktop.
var virtualNICVendors = []string{"vmware", "virtualbox", "qemu", "xensource", "parallels"}

// enterpriseTypes maps SNMP sysObjectID prefixes (private enterprise numbers, or a
// product subtree) to the appliance they identify.
var enterpriseTypes = []struct {
	prefix string
	typ    Type
	weight float64
	maker  string
}{
	{"1.3.6.1.4.1.11.2.3.9.", Printer, 0.9, "HP JetDirect"},
	{"1.3.6.1.4.1.12356.", Firewall, 0.9, "Fortinet"},
	{"1.3.6.1.4.1.25461.", Firewall, 0.9, "Palo Alto Networks"},
	{"1.3.6.1.4.1.8741.", Firewall, 0.9, "SonicWall"},
	{"1.3.6.1.4.1.318.", UPS, 0.85, "APC"},
	{"1.3.6.1.4.1.534.", UPS, 0.85, "Eaton Powerware"},
	{"1.3.6.1.4.1.6574.", NASStorage, 0.9, "Synology"},
	{"1.3.6.1.4.1.24681.", NASStorage, 0.9, "QNAP"},
	{"1.3.6.1.4.1.789.", NASStorage, 0.9, "NetApp"},
	{"1.3.6.1.4.1.6876.", Hypervisor, 0.85, "VMware"},
	{"1.3.6.1.4.1.14988.", Router, 0.85, "MikroTik"},
	{"1.3.6.1.4.1.2435.", Printer, 0.9, "Brother"},
	{"1.3.6.1.4.1.641.", Printer, 0.9, "Lexmark"},
	{"1.3.6.1.4.1.253.", Printer, 0.9, "Xerox"},
	{"1.3.6.1.4.1.367.", Printer, 0.85, "Ricoh"},
	{"1.3.6.1.4.1.1602.", Printer, 0.8, "Canon"},
	{"1.3.6.1.4.1.368.", IPCamera, 0.85, "Axis"},
	{"1.3.6.1.4.1.14823.", WirelessAP, 0.7, "Aruba"},
	{"1.3.6.1.4.1.41112.", WirelessAP, 0.7, "Ubiquiti"},
}

// deviceClassTypes maps fingerprint device classes to appliance types.
var deviceClassTypes = map[string]Type{
	"firewall":         Firewall,
	"router":           Router,
	"broadband router": Router,
	"switch":           NetworkSwitch,
	"bridge":           NetworkSwitch,
	"wap":              WirelessAP,
	"power-device":     UPS,
	"printer":          Printer,
	"voip phone":       IPPhone,
	"voip adapter":     IPPhone,
	"webcam":           IPCamera,
	"storage-misc":     NASStorage,
}

// databaseServices are service names of database engines.
var databaseServices = map[string]string{
	"ms-sql-s":      "Microsoft SQL Server",
	"mysql":         "MySQL",
	"postgresql":    "PostgreSQL",
	"oracle-tns":    "Oracle",
	"oracle":        "Oracle",
	"mongodb":       "MongoDB",
	"mongod":        "MongoDB",
	"redis":         "Redis",
	"couchdb":       "CouchDB",
	"cassandra":     "Cassandra",
	"ibm-db2":       "Db2",
	"drda":          "Db2",
	"firebird":      "Firebird",
	"gds_db":        "Firebird",
	"sybase":        "Sybase",
	"informix":      "Informix",
	"mssql":         "Microsoft SQL Server",
	"elasticsearch": "Elasticsearch",
	"intersystems":  "InterSystems",
}
