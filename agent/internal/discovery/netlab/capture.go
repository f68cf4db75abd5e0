package netlab

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Capture is a running tcpdump on one interface of the hub.
type Capture struct {
	lab  *Lab
	cmd  *exec.Cmd
	path string
}

// Packet is a summary of one captured Ethernet frame.
type Packet struct {
	SrcMAC, DstMAC string
	EtherType      string // "ARP", "IPv4", ...
	SrcIP, DstIP   string // for IPv4, and ARP's sender and target protocol addresses
	ARPOp          uint16 // 1 request, 2 reply; zero for other frames
	Proto          string // "TCP", "UDP", "ICMPv4", ...
	DstPort        uint16
}

func (p Packet) String() string {
	if p.ARPOp != 0 {
		return fmt.Sprintf("ARP op %d %s (%s) -> %s", p.ARPOp, p.SrcIP, p.SrcMAC, p.DstIP)
	}
	return fmt.Sprintf("%s %s %s (%s) -> %s:%d", p.EtherType, p.Proto, p.SrcIP, p.SrcMAC,
		p.DstIP, p.DstPort)
}

// StartCapture records every frame on the hub-side interface iface (as Attach returns it)
// or on a bridge, until Stop.
func (l *Lab) StartCapture(iface string) *Capture {
	l.t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		l.t.Skip("netlab: skipped: tcpdump is not installed (make test-deps)")
	}
	path := filepath.Join(l.dir, "capture-"+iface+".pcap")
	cmd := l.Start(l.hub, "tcpdump-"+iface, "tcpdump", "-i", iface, "-n", "-U", "-s", "256",
		"-w", path)

	log := filepath.Join(l.dir, "tcpdump-"+iface+".log")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(log)
		if strings.Contains(string(b), "listening on") {
			break
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("netlab: tcpdump on %s did not start: %s", iface, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &Capture{lab: l, cmd: cmd, path: path}
}

// Stop ends the capture and returns the frames it saw.
func (c *Capture) Stop() []Packet {
	c.lab.t.Helper()
	time.Sleep(200 * time.Millisecond) // let the last frames reach the file
	Stop(c.cmd)
	pkts, err := ReadPcap(c.path)
	if err != nil {
		c.lab.t.Fatalf("netlab: %v", err)
	}
	return pkts
}

// ReadPcap summarizes the Ethernet frames of a pcap file.
func ReadPcap(path string) ([]Packet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read capture: %w", err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("read capture %s: %w", path, err)
	}

	var out []Packet
	for {
		data, _, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("read capture %s: %w", path, err)
		}
		out = append(out, summarize(data))
	}
}

func summarize(data []byte) Packet {
	pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.NoCopy)
	var p Packet
	if eth, ok := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet); ok {
		p.SrcMAC, p.DstMAC, p.EtherType = eth.SrcMAC.String(), eth.DstMAC.String(),
			eth.EthernetType.String()
	}
	if arp, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP); ok {
		p.ARPOp = arp.Operation
		p.SrcIP = net.IP(arp.SourceProtAddress).String()
		p.DstIP = net.IP(arp.DstProtAddress).String()
	}
	if ip, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		p.SrcIP, p.DstIP, p.Proto = ip.SrcIP.String(), ip.DstIP.String(), ip.Protocol.String()
	}
	if tcp, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
		p.DstPort = uint16(tcp.DstPort)
	}
	if udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
		p.DstPort = uint16(udp.DstPort)
	}
	return p
}
