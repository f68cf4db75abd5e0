// Package arp is discovery's passive method: it listens to the ARP traffic on one
// interface and reports every sender's MAC and IPv4 address. It sends nothing, so it is
// the one method allowed on passive-only subnets. It captures in pure Go (gopacket's
// pcapgo.EthernetHandle on an AF_PACKET socket), so the agent stays static with cgo off.
// It needs CAP_NET_RAW.
package arp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"golang.org/x/sys/unix"

	"github.com/wardsec/ward/agent/internal/discovery/merge"
)

// readTimeout bounds one blocking read, so Listen notices cancellation.
const readTimeout = 250 * time.Millisecond

// repeatAfter is how long a (MAC, address) pair stays quiet after being reported.
const repeatAfter = time.Minute

// Listen reports the sender of every ARP request and reply seen on iface until ctx is
// cancelled; it then returns nil. found is called from Listen's goroutine. Senders
// without an address (ARP probes, 0.0.0.0) and repeats within a minute are skipped.
func Listen(ctx context.Context, iface string, found func(merge.Sighting)) error {
	h, err := pcapgo.NewEthernetHandle(iface)
	if err != nil {
		return fmt.Errorf("arp listen on %s: %w", iface, err)
	}
	defer h.Close()
	if err := setReadTimeout(h, readTimeout); err != nil {
		return fmt.Errorf("arp listen on %s: %w", iface, err)
	}

	last := map[string]time.Time{}
	for ctx.Err() == nil {
		data, ci, err := h.ReadPacketData()
		if err != nil {
			if isTimeout(err) {
				continue
			}
			return fmt.Errorf("arp listen on %s: %w", iface, err)
		}
		sg, ok := parse(data)
		if !ok {
			continue
		}
		if !ci.Timestamp.IsZero() {
			sg.Time = ci.Timestamp
		}
		key := sg.MAC + "/" + sg.Addr.String()
		if t, seen := last[key]; seen && sg.Time.Sub(t) < repeatAfter {
			continue
		}
		last[key] = sg.Time
		sg.Attributes = map[string]string{"interface": iface}
		found(sg)
	}
	return nil
}

// parse returns the sender of an ARP frame.
func parse(data []byte) (merge.Sighting, bool) {
	pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.NoCopy)
	a, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
	if !ok || a.AddrType != layers.LinkTypeEthernet || a.Protocol != layers.EthernetTypeIPv4 {
		return merge.Sighting{}, false
	}
	ip, ok := netip.AddrFromSlice(a.SourceProtAddress)
	mac := merge.NormalizeMAC(net.HardwareAddr(a.SourceHwAddress).String())
	if !ok || !ip.IsValid() || ip.IsUnspecified() || mac == "" {
		return merge.Sighting{}, false
	}
	return merge.Sighting{Method: merge.MethodARP, Time: time.Now(), MAC: mac,
		Addr: ip.Unmap()}, true
}

// setReadTimeout sets SO_RCVTIMEO on the handle's socket.
//
// Known limitation: gopacket v1.1.19's EthernetHandle neither exposes its descriptor nor
// offers a timeout, and closing the socket does not wake a blocked read; the descriptor
// is read by reflection, which a later gopacket may break (the error then says so).
func setReadTimeout(h *pcapgo.EthernetHandle, d time.Duration) error {
	f := reflect.ValueOf(h).Elem().FieldByName("fd")
	if !f.IsValid() || f.Kind() != reflect.Int {
		return errors.New("set read timeout: gopacket's EthernetHandle has no fd field")
	}
	tv := unix.NsecToTimeval(d.Nanoseconds())
	if err := unix.SetsockoptTimeval(int(f.Int()), unix.SOL_SOCKET, unix.SO_RCVTIMEO,
		&tv); err != nil {
		return fmt.Errorf("set read timeout: %w", err)
	}
	return nil
}

func isTimeout(err error) bool {
	s := err.Error()
	return strings.Contains(s, unix.EAGAIN.Error()) || strings.Contains(s, unix.EINTR.Error())
}
