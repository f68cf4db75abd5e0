// Package nmapxml reads nmap's XML output (as `nmap -oX` writes it) into the hosts the
// classifier takes. Only hosts that are up are returned, with their open ports.
package nmapxml

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/wardsec/ward/pkg/classify"
)

// Error is a problem in an nmap XML document, at a line (1-based; 0 when unknown).
type Error struct {
	Line int
	Err  error
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return "nmap xml: " + e.Err.Error()
	}
	return fmt.Sprintf("nmap xml: line %d: %v", e.Line, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrNotNmap means the document is XML but not an nmap run.
var ErrNotNmap = errors.New("not nmap output (no <nmaprun> root element)")

// ParseFile reads the nmap XML file at path. Errors name the path and the line.
func ParseFile(path string) ([]classify.Host, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open nmap xml: %w", err)
	}
	defer f.Close()

	hosts, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return hosts, nil
}

// Parse reads one nmap XML document. A malformed document is an *Error naming the line.
func Parse(r io.Reader) ([]classify.Host, error) {
	d := xml.NewDecoder(r)
	d.Strict = true

	var hosts []classify.Host
	root := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, lineError(d, err)
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if !root {
			if start.Name.Local != "nmaprun" {
				return nil, lineError(d, ErrNotNmap)
			}
			root = true
			continue
		}
		if start.Name.Local != "host" {
			continue
		}
		line, _ := d.InputPos()
		var x xmlHost
		if err := d.DecodeElement(&x, &start); err != nil {
			return nil, lineError(d, err)
		}
		h, err := x.host()
		if err != nil {
			return nil, &Error{Line: line, Err: err}
		}
		if h != nil {
			hosts = append(hosts, *h)
		}
	}
	if !root {
		return nil, &Error{Err: ErrNotNmap}
	}
	return hosts, nil
}

func lineError(d *xml.Decoder, err error) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return &Error{Line: se.Line, Err: errors.New(se.Msg)}
	}
	line, _ := d.InputPos()
	return &Error{Line: line, Err: err}
}

type xmlHost struct {
	Status struct {
		State string `xml:"state,attr"`
	} `xml:"status"`
	Addresses []struct {
		Addr   string `xml:"addr,attr"`
		Type   string `xml:"addrtype,attr"`
		Vendor string `xml:"vendor,attr"`
	} `xml:"address"`
	Hostnames []struct {
		Name string `xml:"name,attr"`
	} `xml:"hostnames>hostname"`
	Ports      []xmlPort    `xml:"ports>port"`
	OSMatches  []xmlOSMatch `xml:"os>osmatch"`
	HostScript []xmlScript  `xml:"hostscript>script"`
}

type xmlPort struct {
	Protocol string `xml:"protocol,attr"`
	PortID   string `xml:"portid,attr"`
	State    struct {
		State string `xml:"state,attr"`
	} `xml:"state"`
	Service struct {
		Name       string `xml:"name,attr"`
		Product    string `xml:"product,attr"`
		Version    string `xml:"version,attr"`
		ExtraInfo  string `xml:"extrainfo,attr"`
		OSType     string `xml:"ostype,attr"`
		DeviceType string `xml:"devicetype,attr"`
		Tunnel     string `xml:"tunnel,attr"`
	} `xml:"service"`
	Scripts []xmlScript `xml:"script"`
}

type xmlScript struct {
	ID     string `xml:"id,attr"`
	Output string `xml:"output,attr"`
}

type xmlOSMatch struct {
	Name     string `xml:"name,attr"`
	Accuracy string `xml:"accuracy,attr"`
	Classes  []struct {
		Type   string `xml:"type,attr"`
		Vendor string `xml:"vendor,attr"`
		Family string `xml:"osfamily,attr"`
		Gen    string `xml:"osgen,attr"`
	} `xml:"osclass"`
}

// host converts one <host>; nil when the host is not up.
func (x *xmlHost) host() (*classify.Host, error) {
	if x.Status.State != "" && x.Status.State != "up" {
		return nil, nil
	}
	h := &classify.Host{}
	for _, a := range x.Addresses {
		switch a.Type {
		case "ipv4", "ipv6":
			if h.IP == "" {
				h.IP = a.Addr
			}
		case "mac":
			h.MAC, h.Vendor = strings.ToLower(a.Addr), a.Vendor
		}
	}
	if len(x.Hostnames) > 0 {
		h.Hostname = x.Hostnames[0].Name
	}
	for _, p := range x.Ports {
		s, ok, err := p.service()
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		h.Services = append(h.Services, s)
		for _, sc := range s.Scripts {
			if sc.ID == "snmp-sysdescr" && h.SysDescr == "" {
				h.SysDescr = firstLine(sc.Output)
			}
		}
	}
	for _, m := range x.OSMatches {
		om, err := m.match()
		if err != nil {
			return nil, err
		}
		h.OS = append(h.OS, om)
	}
	for _, sc := range x.HostScript {
		h.Scripts = append(h.Scripts, classify.Script{ID: sc.ID, Output: sc.Output})
	}
	return h, nil
}

// service converts an open port; ok is false for ports that are not open.
func (p *xmlPort) service() (classify.Service, bool, error) {
	open := p.State.State == "open" ||
		p.State.State == "open|filtered" && len(p.Scripts) > 0
	if !open {
		return classify.Service{}, false, nil
	}
	port, err := strconv.Atoi(p.PortID)
	if err != nil || port < 0 || port > 65535 {
		return classify.Service{}, false, fmt.Errorf("port %q is not a port number", p.PortID)
	}
	s := classify.Service{
		Port: port, Protocol: p.Protocol,
		Name: p.Service.Name, Product: p.Service.Product, Version: p.Service.Version,
		ExtraInfo: p.Service.ExtraInfo, OSType: p.Service.OSType,
		DeviceType: p.Service.DeviceType, Tunnel: p.Service.Tunnel,
	}
	for _, sc := range p.Scripts {
		s.Scripts = append(s.Scripts, classify.Script{ID: sc.ID, Output: sc.Output})
	}
	return s, true, nil
}

func (m *xmlOSMatch) match() (classify.OSMatch, error) {
	om := classify.OSMatch{Name: m.Name}
	if m.Accuracy != "" {
		acc, err := strconv.Atoi(m.Accuracy)
		if err != nil || acc < 0 || acc > 100 {
			return om, fmt.Errorf("osmatch %q: accuracy %q is not a percentage",
				m.Name, m.Accuracy)
		}
		om.Accuracy = acc
	}
	if len(m.Classes) > 0 {
		c := m.Classes[0]
		om.Vendor, om.Family, om.Generation, om.DeviceType = c.Vendor, c.Family, c.Gen, c.Type
	}
	return om, nil
}

func firstLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}
