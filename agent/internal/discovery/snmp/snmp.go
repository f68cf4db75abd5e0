// Package snmp is discovery's SNMP method: it asks a device's SNMP agent (through
// github.com/gosnmp/gosnmp) for its system group, its interfaces and, where the device
// offers them, its LLDP and CDP neighbours, trying the site's credentials in order (v3
// first when the site lists it first). OIDs are numeric: Debian ships no MIB files.
package snmp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/wardsec/ward/agent/internal/discovery/merge"
	"github.com/wardsec/ward/pkg/site"
)

// Numeric OIDs of what is asked.
const (
	oidSysDescr    = ".1.3.6.1.2.1.1.1.0"
	oidSysObjectID = ".1.3.6.1.2.1.1.2.0"
	oidSysUpTime   = ".1.3.6.1.2.1.1.3.0"
	oidSysContact  = ".1.3.6.1.2.1.1.4.0"
	oidSysName     = ".1.3.6.1.2.1.1.5.0"
	oidSysLocation = ".1.3.6.1.2.1.1.6.0"
	oidIfDescr     = ".1.3.6.1.2.1.2.2.1.2"          // IF-MIB ifDescr
	oidIfPhys      = ".1.3.6.1.2.1.2.2.1.6"          // IF-MIB ifPhysAddress
	oidLLDPRemName = ".1.0.8802.1.1.2.1.4.1.1.9"     // LLDP-MIB lldpRemSysName
	oidCDPDeviceID = ".1.3.6.1.4.1.9.9.23.1.2.1.1.6" // CISCO-CDP-MIB cdpCacheDeviceId
)

// maxWalk bounds every table walk, so a huge switch cannot stall the scan.
const maxWalk = 512

// ErrNoAnswer is returned by Poll when no credential got an answer.
var ErrNoAnswer = errors.New("snmp: no answer with any credential")

// Poller polls devices. The zero value is not usable; fill Creds.
type Poller struct {
	// Creds are tried in order until one answers.
	Creds []site.SNMPCredential
	// Timeout per request; zero means 2 s.
	Timeout time.Duration
	// Port is the agent's UDP port; zero means 161.
	Port uint16
}

// Poll asks addr for its system group, interfaces and neighbours and returns what it
// said as a sighting. Attributes: sys_object_id, sys_uptime, sys_contact, sys_location,
// credential (the winning credential's description, no secret), if_count, interfaces,
// macs, lldp_neighbors, cdp_neighbors.
func (p *Poller) Poll(ctx context.Context, addr netip.Addr) (merge.Sighting, error) {
	if len(p.Creds) == 0 {
		return merge.Sighting{}, errors.New("snmp: no credentials")
	}
	var errs []error
	for _, cred := range p.Creds {
		sg, err := p.pollWith(ctx, addr, cred)
		if err == nil {
			return sg, nil
		}
		if ctx.Err() != nil {
			return merge.Sighting{}, ctx.Err()
		}
		errs = append(errs, fmt.Errorf("%s: %w", cred, err))
	}
	return merge.Sighting{}, fmt.Errorf("%w %s: %w", ErrNoAnswer, addr, errors.Join(errs...))
}

func (p *Poller) pollWith(ctx context.Context, addr netip.Addr,
	cred site.SNMPCredential) (merge.Sighting, error) {
	g, err := p.client(ctx, addr, cred)
	if err != nil {
		return merge.Sighting{}, err
	}
	if err := g.Connect(); err != nil {
		return merge.Sighting{}, fmt.Errorf("connect: %w", err)
	}
	defer g.Conn.Close()

	res, err := g.Get([]string{oidSysDescr, oidSysObjectID, oidSysUpTime, oidSysContact,
		oidSysName, oidSysLocation})
	if err != nil {
		return merge.Sighting{}, fmt.Errorf("get system group: %w", err)
	}
	sys := map[string]string{}
	for _, v := range res.Variables {
		sys[v.Name] = value(v)
	}
	if sys[oidSysDescr] == "" && sys[oidSysObjectID] == "" && sys[oidSysName] == "" {
		return merge.Sighting{}, errors.New("empty system group")
	}

	sg := merge.Sighting{Method: merge.MethodSNMP, Time: time.Now(), Addr: addr,
		Hostname: sys[oidSysName], Description: sys[oidSysDescr],
		Attributes: map[string]string{"credential": cred.String()}}
	for k, oid := range map[string]string{"sys_object_id": oidSysObjectID,
		"sys_uptime": oidSysUpTime, "sys_contact": oidSysContact,
		"sys_location": oidSysLocation} {
		if v := sys[oid]; v != "" {
			sg.Attributes[k] = v
		}
	}
	p.tables(g, &sg)
	return sg, nil
}

// tables walks the interface and neighbour tables; a device that offers none of them
// still counts as answered.
func (p *Poller) tables(g *gosnmp.GoSNMP, sg *merge.Sighting) {
	if names := walk(g, oidIfDescr); len(names) > 0 {
		sg.Attributes["if_count"] = strconv.Itoa(len(names))
		sg.Attributes["interfaces"] = strings.Join(names, ", ")
	}
	var macs []string
	for _, m := range walk(g, oidIfPhys) {
		if n := merge.NormalizeMAC(m); n != "" {
			macs = append(macs, n)
		}
	}
	if len(macs) > 0 {
		sg.Attributes["macs"] = strings.Join(macs, ", ")
	}
	if n := walk(g, oidLLDPRemName); len(n) > 0 {
		sg.Attributes["lldp_neighbors"] = strings.Join(n, ", ")
	}
	if n := walk(g, oidCDPDeviceID); len(n) > 0 {
		sg.Attributes["cdp_neighbors"] = strings.Join(n, ", ")
	}
}

// walk returns the values under root, at most maxWalk; errors end the walk quietly
// (the table is simply not offered).
func walk(g *gosnmp.GoSNMP, root string) []string {
	var out []string
	walkFn := g.BulkWalk
	if g.Version == gosnmp.Version1 {
		walkFn = g.Walk
	}
	errStop := errors.New("enough")
	_ = walkFn(root, func(v gosnmp.SnmpPDU) error {
		if s := value(v); s != "" {
			out = append(out, s)
		}
		if len(out) >= maxWalk {
			return errStop
		}
		return nil
	})
	return out
}

func (p *Poller) client(ctx context.Context, addr netip.Addr,
	cred site.SNMPCredential) (*gosnmp.GoSNMP, error) {
	g := &gosnmp.GoSNMP{Target: addr.String(), Port: p.Port, Timeout: p.Timeout,
		Retries: 1, Context: ctx, MaxOids: gosnmp.MaxOids, MaxRepetitions: 20}
	if g.Port == 0 {
		g.Port = 161
	}
	if g.Timeout == 0 {
		g.Timeout = 2 * time.Second
	}
	if cred.Version == site.SNMPv2c {
		g.Version, g.Community = gosnmp.Version2c, cred.Community
		return g, nil
	}

	auth, ok := authProtocols[cred.AuthProtocol]
	if !ok {
		return nil, fmt.Errorf("auth protocol %q not supported", cred.AuthProtocol)
	}
	usm := &gosnmp.UsmSecurityParameters{UserName: cred.User,
		AuthenticationProtocol: auth, AuthenticationPassphrase: cred.AuthPassphrase,
		PrivacyProtocol: gosnmp.NoPriv}
	g.Version, g.SecurityModel, g.MsgFlags = gosnmp.Version3, gosnmp.UserSecurityModel,
		gosnmp.AuthNoPriv
	if cred.PrivProtocol != "" {
		priv, ok := privProtocols[cred.PrivProtocol]
		if !ok {
			return nil, fmt.Errorf("privacy protocol %q not supported", cred.PrivProtocol)
		}
		usm.PrivacyProtocol, usm.PrivacyPassphrase = priv, cred.PrivPassphrase
		g.MsgFlags = gosnmp.AuthPriv
	}
	g.SecurityParameters = usm
	return g, nil
}

var authProtocols = map[string]gosnmp.SnmpV3AuthProtocol{"MD5": gosnmp.MD5,
	"SHA": gosnmp.SHA, "SHA224": gosnmp.SHA224, "SHA256": gosnmp.SHA256,
	"SHA384": gosnmp.SHA384, "SHA512": gosnmp.SHA512}

var privProtocols = map[string]gosnmp.SnmpV3PrivProtocol{"DES": gosnmp.DES,
	"AES": gosnmp.AES, "AES192": gosnmp.AES192, "AES256": gosnmp.AES256}

// value renders one variable: strings as text (MAC-sized octet strings as MACs), OIDs
// and numbers as decimal text.
func value(v gosnmp.SnmpPDU) string {
	switch v.Type {
	case gosnmp.OctetString:
		b, _ := v.Value.([]byte)
		if len(b) == 6 && !printable(b) {
			return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
		}
		return strings.ToValidUTF8(string(b), "?")
	case gosnmp.ObjectIdentifier:
		s, _ := v.Value.(string)
		return s
	case gosnmp.TimeTicks, gosnmp.Integer, gosnmp.Counter32, gosnmp.Gauge32, gosnmp.Counter64:
		return gosnmp.ToBigInt(v.Value).String()
	case gosnmp.IPAddress:
		s, _ := v.Value.(string)
		return s
	}
	return ""
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
