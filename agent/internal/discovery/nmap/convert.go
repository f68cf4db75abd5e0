package nmap

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	nmaplib "github.com/Ullaakut/nmap/v3"

	"github.com/wardsec/ward/agent/internal/discovery/merge"
)

// sighting converts one live host of nmap's output. It returns false for hosts that are
// not up, have no IPv4/IPv6 address, or lie where the site forbids probing (nmap honours
// --exclude, this is a second guard).
func (s *Scanner) sighting(h nmaplib.Host) (merge.Sighting, bool) {
	if h.Status.State != "up" {
		return merge.Sighting{}, false
	}
	sg := merge.Sighting{Method: merge.MethodNmap, Time: time.Now(),
		Attributes: map[string]string{}}
	for _, a := range h.Addresses {
		switch a.AddrType {
		case "ipv4", "ipv6":
			if ip, err := netip.ParseAddr(a.Addr); err == nil {
				sg.Addr = ip
			}
		case "mac":
			sg.MAC, sg.Vendor = a.Addr, a.Vendor
		}
	}
	if !sg.Addr.IsValid() || !s.cfg.Site.MayProbe(sg.Addr) {
		return merge.Sighting{}, false
	}
	if len(h.Hostnames) > 0 {
		sg.Hostname = h.Hostnames[0].Name
	}

	osMatch(&sg, h.OS)
	for _, p := range h.Ports {
		if p.State.State != "open" {
			continue
		}
		sg.Services = append(sg.Services, service(p))
	}
	for _, sc := range h.HostScripts {
		sg.Attributes["script."+sc.ID] = sc.Output
	}
	return sg, true
}

// osMatch records nmap's best OS guess and its class.
func osMatch(sg *merge.Sighting, os nmaplib.OS) {
	if len(os.Matches) == 0 {
		return
	}
	m := os.Matches[0]
	sg.OS = m.Name
	sg.Attributes["os_accuracy"] = strconv.Itoa(m.Accuracy)
	if len(m.Classes) > 0 {
		c := m.Classes[0]
		for k, v := range map[string]string{"os_vendor": c.Vendor, "os_family": c.Family,
			"os_generation": c.OSGeneration, "os_devicetype": c.Type} {
			if v != "" {
				sg.Attributes[k] = v
			}
		}
	}
}

// service converts one open port. Extra holds version detection's hints on its first
// line ("extrainfo=...; devicetype=...; ostype=...; tunnel=ssl") and one line per script,
// "<script id>: <output>".
func service(p nmaplib.Port) merge.Service {
	sv := merge.Service{Port: p.ID, Protocol: p.Protocol, Name: p.Service.Name,
		Product: p.Service.Product, Version: p.Service.Version}

	var hints []string
	for _, kv := range [][2]string{{"extrainfo", p.Service.ExtraInfo},
		{"devicetype", p.Service.DeviceType}, {"ostype", p.Service.OSType},
		{"tunnel", p.Service.Tunnel}} {
		if kv[1] != "" {
			hints = append(hints, kv[0]+"="+kv[1])
		}
	}
	lines := []string{strings.Join(hints, "; ")}
	for _, sc := range p.Scripts {
		lines = append(lines, fmt.Sprintf("%s: %s", sc.ID, oneLine(sc.Output)))
	}
	if len(hints) > 0 || len(p.Scripts) > 0 {
		sv.Extra = strings.Join(lines, "\n") // the first line stays, empty or not
	}
	return sv
}

// oneLine folds script output to one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
