// Package discovery is the collector role of the agent: on the schedule of the site's
// configuration it scans the clinic's subnets with nmap, polls SNMP agents, listens to
// ARP on every subnet (the only method used on passive-only subnets), merges what each
// method saw into one record per device, and streams the records to the controller as
// DiscoveryReport messages through the agent's spool. Between scans it polls the
// agentless devices the controller names (the site configuration's poll targets) over
// SNMP for reachability, uptime and interface errors, and streams each round as a
// DevicePollReport (poll.go).
//
// The site configuration is read from collector.json in the state directory (see
// pkg/site for its format) before every scan; without one the collector waits for it.
//
// What a DiscoveredDevice carries beyond its named fields:
//   - attributes "seen.<method>": "<first>/<last>" in RFC 3339 UTC, per method;
//   - attributes "source.<field>": the method whose value won for hostname, vendor, os
//     and description;
//   - attributes "nmap.os_accuracy", "nmap.os_vendor", "nmap.os_family",
//     "nmap.os_generation", "nmap.os_devicetype" (nmap's best OS class) and
//     "nmap.script.<id>" (host scripts such as smb-os-discovery);
//   - attributes "snmp.sys_object_id", "snmp.sys_uptime", "snmp.sys_contact",
//     "snmp.sys_location", "snmp.if_count", "snmp.interfaces", "snmp.macs",
//     "snmp.lldp_neighbors", "snmp.cdp_neighbors", "snmp.credential" (no secret);
//     description is the SNMP sysDescr;
//   - attributes "arp.interface";
//   - a service's extra: a first line of version hints "extrainfo=...; devicetype=...;
//     ostype=...; tunnel=ssl" (possibly empty), then one line "<script id>: <output>" per
//     NSE script that ran on the port (dicom-ping, http-title, ssl-cert, banner, ...).
//
// Free text is scrubbed of PHI (pkg/scrub) before it leaves the collector.
package discovery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wardsec/ward/agent/internal/discovery/arp"
	"github.com/wardsec/ward/agent/internal/discovery/mdns"
	"github.com/wardsec/ward/agent/internal/discovery/merge"
	"github.com/wardsec/ward/agent/internal/discovery/nmap"
	"github.com/wardsec/ward/agent/internal/discovery/snmp"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/site"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// ConfigFile is the site configuration's file name in the agent's state directory.
const ConfigFile = "collector.json"

// Sink takes the reports; *client.Client is one. Enqueue must be durable when it returns.
type Sink interface {
	Enqueue(req *wardv1.ConnectRequest) (uint64, error)
}

// Config configures a Collector.
type Config struct {
	// SitePath is the site configuration file. Required.
	SitePath string
	// Sink receives the reports. Required.
	Sink Sink
	// Log receives the collector's log. Required.
	Log *slog.Logger
	// NmapBinary is the nmap binary; empty looks it up in PATH.
	NmapBinary string
	// Privileged enables raw-socket scans (OS detection, SYN, UDP); set it when the
	// process runs as root.
	Privileged bool
	// NoDNS skips reverse DNS lookups.
	NoDNS bool
	// BatchSize is the number of devices per report; zero means 200.
	BatchSize int
	// ProgressEvery bounds how often a progress report is sent during a scan; zero
	// means 10 s.
	ProgressEvery time.Duration
	// RetryEvery is how long Run waits for a missing or invalid site configuration;
	// zero means one minute.
	RetryEvery time.Duration
	// MDNSWait is how long a scan collects mDNS answers; zero means 2 s, negative skips
	// mDNS browsing.
	MDNSWait time.Duration
	// Tenant is the collector's tenant, named in its device poll reports.
	Tenant string
	// PollTimeout is the timeout of one SNMP request of a device poll (retried twice);
	// zero means 2 s.
	PollTimeout time.Duration
}

// Collector runs discovery. Use New; Run and Scan may not run concurrently.
type Collector struct {
	cfg Config
	log *slog.Logger
	arp *merge.Set // what the ARP listeners heard since Run started
	// reload wakes Run from its wait: the site configuration changed (see Reload).
	reload chan struct{}

	pollMu sync.Mutex
	health *snmp.HealthPoller // the device polls' poller, kept while the credentials stay
}

// New checks cfg.
func New(cfg Config) (*Collector, error) {
	switch {
	case cfg.SitePath == "":
		return nil, errors.New("discovery: no site configuration path")
	case cfg.Sink == nil:
		return nil, errors.New("discovery: no sink")
	case cfg.Log == nil:
		return nil, errors.New("discovery: no logger")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 200
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 10 * time.Second
	}
	if cfg.RetryEvery <= 0 {
		cfg.RetryEvery = time.Minute
	}
	return &Collector{cfg: cfg, log: cfg.Log, arp: merge.NewSet(nil),
		reload: make(chan struct{}, 1)}, nil
}

// Run scans at once and then on the site's schedule, listens to ARP on the site's
// interfaces in between, and polls the site's agentless devices on the poll interval
// (see PollRound), until ctx is cancelled; it returns nil then. A failed scan is logged
// and reported, and the next one runs on schedule.
func (c *Collector) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	wg.Add(1)
	go func() {
		defer wg.Done()
		c.runPolls(ctx)
	}()

	listening := map[string]bool{}
	for ctx.Err() == nil {
		st, err := site.Load(c.cfg.SitePath)
		if err != nil {
			c.log.Warn("no usable site configuration; waiting", logkey.Path, c.cfg.SitePath,
				logkey.Error, err.Error())
			if c.sleep(ctx, c.cfg.RetryEvery) != nil {
				break
			}
			continue
		}
		for _, w := range st.Warnings() {
			c.log.Warn("site configuration", logkey.Reason, w)
		}
		logPollTargets(c.log, st)
		c.listen(ctx, &wg, st, listening)

		if _, err := c.Scan(ctx, st); err != nil && ctx.Err() == nil {
			c.log.Error("discovery scan failed", logkey.Error, err.Error())
		}
		if c.sleep(ctx, time.Duration(st.Schedule.Interval)) != nil {
			break
		}
	}
	c.log.Info("collector stopped")
	return nil
}

// listen starts an ARP listener on every interface of the site not yet listened to.
func (c *Collector) listen(ctx context.Context, wg *sync.WaitGroup, st *site.Config,
	listening map[string]bool) {
	for _, iface := range Interfaces(st) {
		if listening[iface] {
			continue
		}
		listening[iface] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := arp.Listen(ctx, iface, func(sg merge.Sighting) { c.arp.Add(sg) })
			if err != nil {
				c.log.Warn("passive arp listening stopped", "interface", iface,
					logkey.Error, err.Error())
			}
		}()
	}
}

// Summary describes one finished scan.
type Summary struct {
	ScanID     string
	HostsTotal int // addresses the scan could probe
	HostsFound int // live hosts nmap found
	Devices    int // devices reported (all methods)
	Reports    int // reports enqueued
}

// Scan runs one scan of st and streams its reports; the last one has complete set, and
// carries the error when the scan failed or was cancelled (the error is also returned).
func (c *Collector) Scan(ctx context.Context, st *site.Config) (Summary, error) {
	sum := Summary{ScanID: newScanID()}
	log := c.log.With("scan_id", sum.ScanID)
	start := time.Now()
	subnet := reportSubnet(st.ScanPrefixes())
	log.Info("discovery scan starting", "subnets", st.Subnets,
		"passive_subnets", st.PassiveSubnets, "excluded", len(st.Exclude))

	set := merge.NewSet(nil)
	var p nmap.Progress
	pr := &progressReporter{c: c, log: log, sum: &sum, subnet: subnet}
	scanErr := c.active(ctx, st, set, func(np nmap.Progress) {
		p = np
		sum.HostsTotal, sum.HostsFound = np.HostsTotal, np.HostsFound
		pr.report(np)
	})
	if scanErr == nil {
		c.pollSNMP(ctx, st, set, log)
		c.browseMDNS(ctx, st, set, log)
	}
	c.addARP(set)
	set.Remove(st.Excluded)

	devices := set.Devices()
	sum.Devices = len(devices)
	errText := ""
	if scanErr != nil {
		errText = scanErr.Error()
		if ctx.Err() != nil {
			errText = "scan cancelled"
		}
	}
	if err := c.send(&sum, subnet, devices, p, errText); err != nil {
		return sum, err
	}
	log.Info("discovery scan done", "hosts_total", sum.HostsTotal,
		"hosts_found", sum.HostsFound, "devices", sum.Devices, "reports", sum.Reports,
		logkey.Duration, time.Since(start).Round(time.Millisecond), logkey.Error, errText)
	return sum, scanErr
}

// active runs nmap over the scanned subnets.
func (c *Collector) active(ctx context.Context, st *site.Config, set *merge.Set,
	progress func(nmap.Progress)) error {
	if len(st.Subnets) == 0 {
		return nil
	}
	sc, err := nmap.New(nmap.Config{Site: st, Binary: c.cfg.NmapBinary,
		Privileged: c.cfg.Privileged, NoDNS: c.cfg.NoDNS, Log: c.log})
	if err != nil {
		return err
	}
	_, err = sc.Scan(ctx, func(sg merge.Sighting) { set.Add(sg) }, progress)
	return err
}

// pollSNMP polls, in parallel, the live hosts that may be probed and answered on UDP 161
// (or every live host when UDP could not be scanned).
func (c *Collector) pollSNMP(ctx context.Context, st *site.Config, set *merge.Set,
	log *slog.Logger) {
	if len(st.SNMP) == 0 {
		return
	}
	p := &snmp.Poller{Creds: st.SNMP}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, d := range set.Devices() {
		if len(d.Addresses) == 0 || !st.MayProbe(d.Addresses[0]) {
			continue
		}
		if c.cfg.Privileged && !slices.ContainsFunc(d.Services, func(s merge.Service) bool {
			return s.Protocol == "udp" && s.Port == 161
		}) {
			continue
		}
		addr := d.Addresses[0]
		g.Go(func() error {
			sg, err := p.Poll(ctx, addr)
			if err != nil {
				log.Info("snmp poll got no answer", logkey.Addr, addr.String(),
					logkey.Reason, err.Error())
				return nil
			}
			set.Add(sg)
			return nil
		})
	}
	_ = g.Wait()
}

// browseMDNS queries DNS-SD on the interfaces of the scanned subnets only (a query is a
// probe: passive-only subnets never see one) and adds the answers of probe-able hosts.
func (c *Collector) browseMDNS(ctx context.Context, st *site.Config, set *merge.Set,
	log *slog.Logger) {
	if c.cfg.MDNSWait < 0 {
		return
	}
	ifaces := interfacesIn(st.ScanPrefixes(), st.Interface)
	if len(ifaces) == 0 {
		return
	}
	n := 0
	err := mdns.Browse(ctx, mdns.Config{Interfaces: ifaces, Wait: c.cfg.MDNSWait, Log: log},
		func(sg merge.Sighting) {
			if st.MayProbe(sg.Addr) && set.Add(sg) {
				n++
			}
		})
	if err != nil {
		log.Warn("mdns browsing failed", logkey.Error, err.Error())
		return
	}
	log.Info("mdns browsing done", "interfaces", ifaces, "responders", n)
}

// addARP copies what the listeners heard into the scan's set.
func (c *Collector) addARP(set *merge.Set) {
	for _, d := range c.arp.Devices() {
		seen := d.Methods[merge.MethodARP]
		for _, a := range d.Addresses {
			for _, t := range []time.Time{seen.First, seen.Last} {
				set.Add(merge.Sighting{Method: merge.MethodARP, Time: t, MAC: d.MAC, Addr: a,
					Attributes: d.Attributes})
			}
		}
	}
}

// progressReporter sends device-less reports with a scan's progress, at every phase
// change and otherwise at most every ProgressEvery.
type progressReporter struct {
	c      *Collector
	log    *slog.Logger
	sum    *Summary
	subnet string
	phase  string
	last   time.Time
}

func (pr *progressReporter) report(p nmap.Progress) {
	if p.Phase == "done" || p.Phase == pr.phase && time.Since(pr.last) < pr.c.cfg.ProgressEvery {
		return
	}
	pr.phase, pr.last = p.Phase, time.Now()
	pr.log.Info("discovery progress", "phase", p.Phase, "hosts_done", p.HostsDone,
		"hosts_found", p.HostsFound, "hosts_total", p.HostsTotal)
	err := pr.c.enqueue(&wardv1.DiscoveryReport{ScanId: pr.sum.ScanID, Subnet: pr.subnet,
		HostsDone: uint32(p.HostsDone), HostsFound: uint32(p.HostsFound)})
	if err != nil {
		pr.log.Warn("progress report not spooled", logkey.Error, err.Error())
		return
	}
	pr.sum.Reports++
}

// send streams devices in batches; the last report is complete.
func (c *Collector) send(sum *Summary, subnet string, devices []merge.Device,
	p nmap.Progress, errText string) error {
	for i := 0; i == 0 || i < len(devices); i += c.cfg.BatchSize {
		batch := devices[i:min(i+c.cfg.BatchSize, len(devices))]
		r := &wardv1.DiscoveryReport{ScanId: sum.ScanID, Subnet: subnet,
			HostsDone: uint32(p.HostsDone), HostsFound: uint32(p.HostsFound),
			Complete: i+c.cfg.BatchSize >= len(devices)}
		for _, d := range batch {
			r.Devices = append(r.Devices, deviceProto(d))
		}
		if r.Complete {
			r.Error = text(errText, maxText)
		}
		if err := c.enqueue(r); err != nil {
			return err
		}
		sum.Reports++
	}
	return nil
}

func (c *Collector) enqueue(r *wardv1.DiscoveryReport) error {
	_, err := c.cfg.Sink.Enqueue(&wardv1.ConnectRequest{
		Body: &wardv1.ConnectRequest_DiscoveryReport{DiscoveryReport: r}})
	if err != nil {
		return fmt.Errorf("enqueue discovery report: %w", err)
	}
	return nil
}

// Interfaces returns the site's listening interfaces: the configured one, else every
// local interface with an address in a scanned or passive subnet.
func Interfaces(st *site.Config) []string {
	if st.Interface != "" {
		return []string{st.Interface}
	}
	return interfacesIn(append(st.ScanPrefixes(), st.PassivePrefixes()...), "")
}

// interfacesIn returns the local interfaces with an address in one of prefixes, only
// among the one named only when it is set.
func interfacesIn(prefixes []netip.Prefix, only string) []string {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []string
	for _, ifc := range ifs {
		if only != "" && ifc.Name != only {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if ok && slices.ContainsFunc(prefixes, func(p netip.Prefix) bool {
				return p.Contains(ip.Unmap())
			}) {
				out = append(out, ifc.Name)
				break
			}
		}
	}
	return out
}

func newScanID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// Reload tells Run that the site configuration file changed: it reads it again and scans
// as soon as the scan under way (if any) ends. Safe for concurrent use; never blocks.
func (c *Collector) Reload() {
	select {
	case c.reload <- struct{}{}:
	default:
	}
}

// sleep waits d, until ctx ends or until Reload is called.
func (c *Collector) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	case <-c.reload:
		c.log.Info("site configuration changed; scanning again")
		return nil
	}
}
