// Package mdns is discovery's DNS-SD method: on each given interface it sends one-shot
// multicast DNS queries (RFC 6762 section 5.1) for the service types that printers, IP
// phones, cameras and NAS boxes announce, and reports every responder with its host name,
// the services it offers (SRV ports) and the model it names in its TXT records.
//
// The queries go to 224.0.0.251:5353 from an ephemeral port, so responders answer by
// unicast to that port ("legacy unicast") and nothing listens on 5353 here. Sending a
// query is active: callers pass only interfaces on subnets that may be probed.
package mdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/agent/internal/discovery/merge"
)

// Group is the mDNS IPv4 multicast group and port.
var Group = netip.MustParseAddrPort("224.0.0.251:5353")

// DefaultServices are the service types browsed when Config.Services is empty: what
// printers, IP phones, cameras, NAS boxes and general devices announce.
var DefaultServices = []string{
	"_services._dns-sd._udp.local.", // every type a responder offers
	"_ipp._tcp.local.", "_ipps._tcp.local.", "_printer._tcp.local.",
	"_pdl-datastream._tcp.local.", "_scanner._tcp.local.", "_uscan._tcp.local.",
	"_sip._udp.local.", "_sip._tcp.local.",
	"_rtsp._tcp.local.", "_axis-video._tcp.local.", "_onvif._tcp.local.",
	"_smb._tcp.local.", "_afpovertcp._tcp.local.", "_nfs._tcp.local.",
	"_adisk._tcp.local.", "_device-info._tcp.local.",
	"_http._tcp.local.", "_https._tcp.local.", "_ssh._tcp.local.",
	"_workstation._tcp.local.",
}

// Config configures Browse.
type Config struct {
	// Interfaces are the interfaces to query on, by name. Each needs an IPv4 address.
	Interfaces []string
	// Services are the DNS-SD service types to ask for; empty means DefaultServices.
	Services []string
	// Wait is how long answers are collected after the queries; zero means 2 s.
	Wait time.Duration
	// Log receives the method's log; nil discards it.
	Log *slog.Logger
}

// Browse queries every interface of cfg, waits cfg.Wait for answers (less when ctx ends
// first) and calls found once per responder. It returns an error only when no interface
// could be queried; a failing interface among others is logged.
func Browse(ctx context.Context, cfg Config, found func(merge.Sighting)) error {
	if cfg.Wait <= 0 {
		cfg.Wait = 2 * time.Second
	}
	if len(cfg.Services) == 0 {
		cfg.Services = DefaultServices
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}

	var errs []error
	queried := 0
	results := make(chan []merge.Sighting, len(cfg.Interfaces))
	for _, name := range cfg.Interfaces {
		conn, err := open(name)
		if err != nil {
			errs = append(errs, err)
			cfg.Log.Warn("mdns query not sent", "interface", name, "error", err.Error())
			continue
		}
		queried++
		go func() {
			defer conn.Close()
			results <- browseOne(ctx, conn, name, cfg)
		}()
	}
	if queried == 0 {
		if len(errs) == 0 {
			return nil
		}
		return fmt.Errorf("mdns browse: %w", errors.Join(errs...))
	}
	for range queried {
		for _, sg := range <-results {
			found(sg)
		}
	}
	return nil
}

// open returns a UDP socket bound to an ephemeral port on iface's first IPv4 address,
// with that interface as its multicast interface.
func open(iface string) (*net.UDPConn, error) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("mdns on %s: %w", iface, err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil, fmt.Errorf("mdns on %s: %w", iface, err)
	}
	var local netip.Addr
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap().Is4() {
				local = ip.Unmap()
				break
			}
		}
	}
	if !local.IsValid() {
		return nil, fmt.Errorf("mdns on %s: no IPv4 address", iface)
	}

	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
	if err != nil {
		return nil, fmt.Errorf("mdns on %s: %w", iface, err)
	}
	raw, err := conn.SyscallConn()
	if err == nil {
		var serr error
		err = raw.Control(func(fd uintptr) {
			serr = unix.SetsockoptInet4Addr(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_IF,
				local.As4())
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 255)
			}
		})
		err = errors.Join(err, serr)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("mdns on %s: set multicast interface: %w", iface, err)
	}
	return conn, nil
}

// browseOne sends the queries on conn and folds the answers until the wait ends.
func browseOne(ctx context.Context, conn *net.UDPConn, iface string,
	cfg Config) []merge.Sighting {
	dst := net.UDPAddrFromAddrPort(Group)
	send := func(qs []dnsmessage.Question) {
		for _, msg := range queries(qs) {
			if _, err := conn.WriteToUDP(msg, dst); err != nil {
				cfg.Log.Info("mdns query failed", "interface", iface, "error", err.Error())
				return
			}
		}
	}
	var qs []dnsmessage.Question
	for _, s := range cfg.Services {
		if q, err := question(s, dnsmessage.TypePTR); err == nil {
			qs = append(qs, q)
		}
	}
	send(qs)

	deadline := time.Now().Add(cfg.Wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c := newCollection(iface)
	buf := make([]byte, 9000)
	asked := map[string]bool{}
	for ctx.Err() == nil && time.Now().Before(deadline) {
		_ = conn.SetReadDeadline(minTime(deadline, time.Now().Add(200*time.Millisecond)))
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, syscall.EINTR) || isTimeout(err) {
				continue
			}
			cfg.Log.Info("mdns read failed", "interface", iface, "error", err.Error())
			break
		}
		var m dnsmessage.Message
		if err := m.Unpack(buf[:n]); err != nil || !m.Header.Response {
			continue
		}
		c.add(from.Addr().Unmap(), &m, time.Now())
		// Ask for what the answer left out: an instance's SRV and TXT, a host's address,
		// and the instances of service types a responder enumerated.
		send(c.missing(asked))
	}
	return c.sightings()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// question returns a question for name and type, class IN.
func question(name string, t dnsmessage.Type) (dnsmessage.Question, error) {
	n, err := dnsmessage.NewName(fqdn(name))
	if err != nil {
		return dnsmessage.Question{}, err
	}
	return dnsmessage.Question{Name: n, Type: t, Class: dnsmessage.ClassINET}, nil
}

// queries packs qs into as few messages as fit in a plain Ethernet frame.
func queries(qs []dnsmessage.Question) [][]byte {
	var out [][]byte
	for len(qs) > 0 {
		n := min(len(qs), 16)
		m := dnsmessage.Message{Questions: qs[:n]}
		b, err := m.Pack()
		if err == nil {
			out = append(out, b)
		}
		qs = qs[n:]
	}
	return out
}

func fqdn(s string) string {
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

// hostLabel returns a host name without its ".local." suffix.
func hostLabel(name string) string {
	name = strings.TrimSuffix(name, ".")
	return strings.TrimSuffix(name, ".local")
}

// serviceType splits an instance name "Front Desk._ipp._tcp.local." into its service
// type "_ipp._tcp.local.", or returns "" when it is not one.
func serviceType(instance string) string {
	for _, proto := range []string{"._tcp.local.", "._udp.local."} {
		i := strings.LastIndex(instance, proto)
		if i < 0 {
			continue
		}
		head := instance[:i]
		j := strings.LastIndex(head, "._")
		if j < 0 {
			if strings.HasPrefix(head, "_") {
				return instance
			}
			return ""
		}
		return instance[j+1:]
	}
	return ""
}

// modelKeys are TXT keys that name a device's model, most specific first.
var modelKeys = []string{"ty", "usb_MDL", "md", "model", "product", "mdl"}

// vendorKeys are TXT keys that name its maker.
var vendorKeys = []string{"usb_MFG", "mfg", "manufacturer", "vendor"}

// sortedKeys returns m's keys, sorted.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
