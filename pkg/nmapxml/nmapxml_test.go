package nmapxml_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardsec/ward/pkg/nmapxml"
)

const sample = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<nmaprun scanner="nmap" args="nmap -sV -&#45;script=dicom-ping -oX - 10.0.0.0/30" version="7.93">
<host><status state="up" reason="arp-response"/>
<address addr="10.0.0.1" addrtype="ipv4"/>
<address addr="44:4B:5D:01:02:03" addrtype="mac" vendor="GE Healthcare"/>
<hostnames><hostname name="ct01.clinic.local" type="PTR"/></hostnames>
<ports>
<port protocol="tcp" portid="104"><state state="open" reason="syn-ack"/>
<service name="dicom" method="probed" conf="10"/>
<script id="dicom-ping" output="&#xa;  dicom: DICOM Service Provider discovered!"/></port>
<port protocol="tcp" portid="22"><state state="closed" reason="reset"/><service name="ssh"/></port>
<port protocol="udp" portid="161"><state state="open" reason="udp-response"/>
<service name="snmp"/><script id="snmp-sysdescr" output="Linux ct01 5.10&#xa;  System uptime: 1d"/></port>
</ports>
<os><osmatch name="Linux 5.0 - 5.14" accuracy="91"><osclass type="general purpose" vendor="Linux" osfamily="Linux" osgen="5.X" accuracy="91"/></osmatch></os>
<hostscript><script id="smb-os-discovery" output="OS: Unix"/></hostscript>
</host>
<host><status state="down" reason="no-response"/><address addr="10.0.0.2" addrtype="ipv4"/></host>
<runstats><finished time="1" exit="success"/></runstats>
</nmaprun>
`

func TestParse(t *testing.T) {
	hosts, err := nmapxml.Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 1 {
		t.Fatalf("%d hosts, want 1 (the down host is skipped)", len(hosts))
	}
	h := hosts[0]
	switch {
	case h.IP != "10.0.0.1" || h.MAC != "44:4b:5d:01:02:03" || h.Vendor != "GE Healthcare":
		t.Errorf("addresses: %q %q %q", h.IP, h.MAC, h.Vendor)
	case h.Hostname != "ct01.clinic.local":
		t.Errorf("hostname %q", h.Hostname)
	case len(h.Services) != 2 || h.Services[0].Port != 104 || h.Services[1].Protocol != "udp":
		t.Errorf("services %+v (closed 22 must be skipped)", h.Services)
	case !strings.Contains(h.Services[0].Scripts[0].Output, "DICOM Service Provider"):
		t.Errorf("script %+v", h.Services[0].Scripts)
	case h.SysDescr != "Linux ct01 5.10":
		t.Errorf("sysDescr %q", h.SysDescr)
	case len(h.OS) != 1 || h.OS[0].Accuracy != 91 || h.OS[0].DeviceType != "general purpose":
		t.Errorf("os %+v", h.OS)
	case len(h.Scripts) != 1 || h.Scripts[0].ID != "smb-os-discovery":
		t.Errorf("host scripts %+v", h.Scripts)
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	tests := []struct {
		name, doc string
		line      int
		want      string
	}{
		{"truncated", sample[:strings.Index(sample, "</ports>")], 15, "unexpected EOF"},
		{"bad tag", strings.Replace(sample, "<hostnames>", "<hostnames", 1), 7, ""},
		{"bad port", strings.Replace(sample, `portid="104"`, `portid="x104"`, 1), 4,
			"not a port number"},
		{"bad accuracy", strings.Replace(sample, `accuracy="91">`, `accuracy="ninety">`, 1),
			4, "not a percentage"},
		{"not nmap", "<?xml version=\"1.0\"?>\n<html><body/></html>\n", 2, "not nmap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := nmapxml.Parse(strings.NewReader(tt.doc))
			var xe *nmapxml.Error
			if !errors.As(err, &xe) {
				t.Fatalf("err = %v, want *nmapxml.Error", err)
			}
			if xe.Line != tt.line || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v (line %d), want line %d and %q", err, xe.Line, tt.line,
					tt.want)
			}
		})
	}
	if _, err := nmapxml.Parse(strings.NewReader("")); !errors.Is(err, nmapxml.ErrNotNmap) {
		t.Errorf("empty document: err = %v", err)
	}
}

func TestParseFileNamesThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scan.xml")
	if err := os.WriteFile(path, []byte(sample[:200]), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := nmapxml.ParseFile(path)
	if err == nil || !strings.Contains(err.Error(), path+": nmap xml: line ") {
		t.Fatalf("err = %v", err)
	}
}
