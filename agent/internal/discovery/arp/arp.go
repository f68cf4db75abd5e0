// Package arp is discovery's passive method: it listens to the ARP traffic on one
// interface and reports every sender's MAC and IPv4 address. It sends nothing, so it is
// the one method allowed on passive-only subnets. It captures in pure Go with gopacket's
// AF_PACKET ring (github.com/gopacket/gopacket/afpacket, which needs no cgo), behind a
// kernel filter that passes ARP frames only, and decodes the 28-byte ARP payload itself.
// It needs CAP_NET_RAW.
//
// The agent deliberately does not link gopacket's layers package: its decoder tables are
// initialised at start-up and would cost every agent, collector or not, about 7 MiB of
// memory.
package arp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"golang.org/x/net/bpf"

	"github.com/wardsec/ward/agent/internal/discovery/merge"
)

// pollTimeout bounds one blocking read, so Listen notices cancellation.
const pollTimeout = 250 * time.Millisecond

// repeatAfter is how long a (MAC, address) pair stays quiet after being reported.
const repeatAfter = time.Minute

// The capture ring: ARP frames are small and rare, so a small ring suffices.
const (
	frameSize = 4096
	blockSize = frameSize * 8
	numBlocks = 8
)

// Ethernet and ARP constants.
const (
	etherTypeARP  = 0x0806
	etherTypeVLAN = 0x8100
	etherTypeIPv4 = 0x0800
	hwTypeEther   = 1
)

// arpFilter passes Ethernet frames carrying ARP, directly or behind one 802.1Q tag.
var arpFilter = []bpf.Instruction{
	bpf.LoadAbsolute{Off: 12, Size: 2},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: etherTypeARP, SkipTrue: 3},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: etherTypeVLAN, SkipFalse: 3},
	bpf.LoadAbsolute{Off: 16, Size: 2},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: etherTypeARP, SkipFalse: 1},
	bpf.RetConstant{Val: 256},
	bpf.RetConstant{Val: 0},
}

// Listen reports the sender of every ARP request and reply seen on iface until ctx is
// cancelled; it then returns nil. found is called from Listen's goroutine. Senders
// without an address (ARP probes, 0.0.0.0) and repeats within a minute are skipped.
func Listen(ctx context.Context, iface string, found func(merge.Sighting)) error {
	h, err := afpacket.NewTPacket(afpacket.OptInterface(iface),
		afpacket.OptFrameSize(frameSize), afpacket.OptBlockSize(blockSize),
		afpacket.OptNumBlocks(numBlocks), afpacket.OptPollTimeout(pollTimeout))
	if err != nil {
		return fmt.Errorf("arp listen on %s: %w", iface, err)
	}
	defer h.Close()
	prog, err := bpf.Assemble(arpFilter)
	if err != nil {
		return fmt.Errorf("arp listen on %s: assemble filter: %w", iface, err)
	}
	if err := h.SetBPF(prog); err != nil {
		return fmt.Errorf("arp listen on %s: %w", iface, err)
	}

	last := map[string]time.Time{}
	for ctx.Err() == nil {
		data, ci, err := h.ZeroCopyReadPacketData()
		if errors.Is(err, afpacket.ErrTimeout) {
			continue
		}
		if err != nil {
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

// parse returns the sender of an Ethernet frame carrying an IPv4-over-Ethernet ARP
// request or reply (RFC 826), optionally behind one 802.1Q tag.
func parse(frame []byte) (merge.Sighting, bool) {
	if len(frame) < 14 {
		return merge.Sighting{}, false
	}
	etherType, payload := binary.BigEndian.Uint16(frame[12:14]), frame[14:]
	if etherType == etherTypeVLAN && len(frame) >= 18 {
		etherType, payload = binary.BigEndian.Uint16(frame[16:18]), frame[18:]
	}
	if etherType != etherTypeARP || len(payload) < 28 {
		return merge.Sighting{}, false
	}
	hwType := binary.BigEndian.Uint16(payload[0:2])
	protoType := binary.BigEndian.Uint16(payload[2:4])
	hwLen, protoLen := payload[4], payload[5]
	if hwType != hwTypeEther || protoType != etherTypeIPv4 || hwLen != 6 || protoLen != 4 {
		return merge.Sighting{}, false
	}

	mac := merge.NormalizeMAC(net.HardwareAddr(payload[8:14]).String())
	ip := netip.AddrFrom4([4]byte(payload[14:18]))
	if !ip.IsValid() || ip.IsUnspecified() || mac == "" {
		return merge.Sighting{}, false
	}
	return merge.Sighting{Method: merge.MethodARP, Time: time.Now(), MAC: mac, Addr: ip},
		true
}
