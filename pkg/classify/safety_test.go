package classify_test

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/wardsec/ward/pkg/classify"
)

// vocabulary mixes evidence of every kind, clinical and not, so random hosts combine
// them in ways no real scan would.
var (
	vocabVendors = []string{"", "GE Healthcare", "Baxter International", "Cisco Systems",
		"Fortinet", "Synology Incorporated", "VMware", "Dell", "Hewlett Packard",
		"Philips Medical Systems", "Ubiquiti Networks", "American Power Conversion",
		"Polycom", "Axis Communications AB", "Brother industries", "Mindray", "Apple"}
	vocabNames = []string{"ssh", "http", "https", "dicom", "acr-nema", "hl7", "ms-sql-s",
		"mysql", "ldap", "kerberos-sec", "msrpc", "microsoft-ds", "jetdirect", "ipp",
		"sip", "rtsp", "snmp", "vmware-auth", "isakmp", "afp", "nfs", "unknown", ""}
	vocabPorts = []int{22, 80, 88, 104, 135, 161, 389, 443, 445, 554, 631, 902, 1433,
		2575, 3306, 3389, 4242, 5060, 8080, 9100, 11112}
	vocabProducts = []string{"", "OpenSSH", "nginx", "Microsoft IIS httpd", "Orthanc",
		"Mirth Connect", "FortiGate", "Synology DiskStation", "HP LaserJet", "Polycom VVX",
		"AXIS", "Smart-UPS", "VMware ESXi", "Microsoft SQL Server 2019", "OpenEMR",
		"Catalyst", "Infusion pump", "Patient Monitor", "Ivanti Connect Secure"}
	vocabOS = []string{"", "Linux 5.0 - 5.14", "Microsoft Windows Server 2019",
		"Microsoft Windows 10", "Apple macOS 12", "Cisco IOS 15", "FreeBSD 12.0",
		"VMware ESXi 7.0", "HP embedded"}
	vocabClasses = []string{"general purpose", "switch", "router", "firewall", "printer",
		"WAP", "webcam", "VoIP phone", "power-device", "storage-misc", "specialized", ""}
	medicalVendors = map[string]bool{"GE Healthcare": true, "Baxter International": true,
		"Philips Medical Systems": true, "Mindray": true}
)

func randomHost(r *rand.Rand) classify.Host {
	pick := func(list []string) string { return list[r.IntN(len(list))] }
	h := classify.Host{
		IP:     "10.9.8." + strconv.Itoa(r.IntN(254)+1),
		Vendor: pick(vocabVendors),
	}
	if os := pick(vocabOS); os != "" {
		h.OS = []classify.OSMatch{{Name: os, Accuracy: 50 + r.IntN(51),
			DeviceType: pick(vocabClasses)}}
	}
	for n := r.IntN(6); n > 0; n-- {
		s := classify.Service{Port: vocabPorts[r.IntN(len(vocabPorts))], Protocol: "tcp",
			Name: pick(vocabNames), Product: pick(vocabProducts)}
		if r.IntN(4) == 0 {
			s.Scripts = []classify.Script{{ID: "http-title", Output: pick(vocabProducts)}}
		}
		if r.IntN(8) == 0 {
			s.Scripts = append(s.Scripts, classify.Script{ID: "dicom-ping",
				Output: "dicom: DICOM Service Provider discovered!"})
		}
		h.Services = append(h.Services, s)
	}
	if r.IntN(3) == 0 {
		h.SysDescr = pick(vocabProducts)
	}
	return h
}

// hasPlainClinicalEvidence reports evidence that must always make a host clinical: a
// medical maker's MAC, a DICOM port or a DICOM answer.
func hasPlainClinicalEvidence(h *classify.Host) bool {
	if medicalVendors[h.Vendor] {
		return true
	}
	for _, s := range h.Services {
		if s.Port == 104 || s.Port == 11112 || s.Name == "dicom" {
			return true
		}
		for _, sc := range s.Scripts {
			if sc.ID == "dicom-ping" {
				return true
			}
		}
	}
	return false
}

// TestRandomEvidenceClinicalSafety classifies many random hosts and checks that
// clinical evidence always yields a clinical type that is neither polled nor
// auto-enrolled, and that every result follows its type's profile.
func TestRandomEvidenceClinicalSafety(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 164312))
	c := classify.New(nil)
	for i := 0; i < 20000; i++ {
		h := randomHost(r)
		res := c.Classify(&h)
		checkInvariants(t, h.IP, res)
		if hasPlainClinicalEvidence(&h) && (!res.Clinical || !res.Type.Clinical() ||
			res.Type.ActivelyTouched()) {
			t.Fatalf("host %+v with clinical evidence classified %s (%s/%s): %v",
				h, res.Type, res.Strategy, res.Enrollment, res.Reasons)
		}
	}
}

// FuzzClassify feeds arbitrary bytes in as evidence. Run with
// go test -fuzz FuzzClassify ./pkg/classify/ for a longer search.
func FuzzClassify(f *testing.F) {
	f.Add(uint64(1), "GE Healthcare", "acr-nema", "", 104)
	f.Add(uint64(2), "Cisco Systems", "ssh", "Cisco IOS Software, C2960X", 22)
	f.Add(uint64(3), "", "http", "Orthanc Explorer", 8042)
	c := classify.New(nil)
	f.Fuzz(func(t *testing.T, seed uint64, vendor, name, text string, port int) {
		h := randomHost(rand.New(rand.NewPCG(seed, 7)))
		h.Vendor = vendor
		h.Services = append(h.Services, classify.Service{Port: port, Name: name,
			Product: text, Scripts: []classify.Script{{ID: "banner", Output: text}}})
		h.SysDescr = text
		res := c.Classify(&h)
		checkInvariants(t, "fuzz", res)
		if hasPlainClinicalEvidence(&h) && !res.Type.Clinical() {
			t.Fatalf("clinical evidence classified %s: %v", res.Type, res.Reasons)
		}
	})
}
