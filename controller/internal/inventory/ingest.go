package inventory

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/classify"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Limits on what one discovered device may carry into the inventory.
const (
	maxAddresses  = 16
	maxServices   = 256
	maxAttributes = 64
	maxText       = 1024 // bytes of any one text field
)

// DeviceID returns the inventory key of a device: "mac:<mac>" when mac is a MAC
// address, else "ip:<first valid address>"; "" when there is neither.
func DeviceID(mac string, addresses []string) string {
	if m := normalMAC(mac); m != "" {
		return "mac:" + m
	}
	for _, a := range addresses {
		if ip, err := netip.ParseAddr(a); err == nil {
			return "ip:" + ip.String()
		}
	}
	return ""
}

// normalMAC returns mac lower-case and colon-separated, or "" when it is not a MAC.
func normalMAC(mac string) string {
	var hex []byte
	for i := 0; i < len(mac); i++ {
		c := mac[i]
		switch {
		case c == ':' || c == '-' || c == '.':
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
			hex = append(hex, c)
		case c >= 'A' && c <= 'F':
			hex = append(hex, c+'a'-'A')
		default:
			return ""
		}
	}
	if len(hex) != 12 || string(hex) == "000000000000" {
		return ""
	}
	var b strings.Builder
	for i := 0; i < 12; i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.Write(hex[i : i+2])
	}
	return b.String()
}

// Ingest merges one discovery report of a collector into the tenant's inventory and
// records its scan progress. It is called only for reports already stored durably.
func (inv *Inventory) Ingest(ctx context.Context, tenant, collector string,
	r *wardv1.DiscoveryReport) error {
	if err := inv.recordScan(ctx, tenant, collector, r); err != nil {
		return err
	}

	zones := inv.siteZones(ctx, tenant)
	for _, dev := range r.GetDevices() {
		if err := inv.ingestDevice(ctx, tenant, collector, dev, zones); err != nil {
			return err
		}
	}

	if r.GetComplete() {
		n, _ := inv.st.CountDevices(ctx, tenant)
		if _, err := inv.cfg.Recorder.Record(ctx, evidence.Entry{Tenant: tenant,
			Type:    evidence.TypeDiscoveryCompleted,
			Actor:   evidence.Actor{Kind: evidence.ActorAgent, ID: collector},
			Subject: collector, Data: map[string]any{"scan_id": r.GetScanId(),
				"subnet": r.GetSubnet(), "hosts_done": r.GetHostsDone(),
				"hosts_found": r.GetHostsFound(), "error": r.GetError(), "devices": n}},
		); err != nil {
			return fmt.Errorf("record scan %s: %w", r.GetScanId(), err)
		}
		inv.log.Info("discovery scan completed", logkey.Tenant, tenant,
			logkey.Agent, collector, logkey.Scan, r.GetScanId(), logkey.Count, n)
	}
	return nil
}

func (inv *Inventory) recordScan(ctx context.Context, tenant, collector string,
	r *wardv1.DiscoveryReport) error {
	now := inv.clock().UTC()
	sc := store.ScanStatus{Tenant: tenant, Collector: collector, ScanID: r.GetScanId(),
		Subnet: clip(r.GetSubnet()), HostsDone: r.GetHostsDone(),
		HostsFound: r.GetHostsFound(), Complete: r.GetComplete(), Error: clip(r.GetError()),
		StartedAt: now, UpdatedAt: now}
	scans, err := inv.st.ListScans(ctx, tenant)
	if err != nil {
		return err
	}
	for _, old := range scans {
		if old.Collector == collector && old.ScanID == sc.ScanID {
			sc.StartedAt = old.StartedAt
		}
	}
	return inv.st.PutScan(ctx, sc)
}

// zones are the parts of a site's network the configuration treats apart.
type zones struct {
	excluded []netip.Prefix // never watched
	passive  []netip.Prefix // never actively touched: no SSH bootstrap, no SNMP polling
}

// siteZones reads the tenant's excluded and passive-only ranges.
func (inv *Inventory) siteZones(ctx context.Context, tenant string) zones {
	var z zones
	cfg, err := inv.st.GetSiteConfig(ctx, tenant)
	if err != nil {
		return z
	}
	for _, e := range cfg.Config.Exclude {
		if p, err := parsePrefix(e); err == nil {
			z.excluded = append(z.excluded, p)
		}
	}
	for _, e := range cfg.Config.PassiveSubnets {
		if p, err := parsePrefix(e); err == nil {
			z.passive = append(z.passive, p)
		}
	}
	return z
}

// in returns the first of ps holding one of the addresses; ok is false when none does.
func in(ps []netip.Prefix, addresses []string) (netip.Prefix, bool) {
	for _, a := range addresses {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			continue
		}
		for _, p := range ps {
			if p.Contains(ip) {
				return p, true
			}
		}
	}
	return netip.Prefix{}, false
}

// parsePrefix accepts a CIDR range or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ingestDevice merges one device, classifies it and decides its state.
func (inv *Inventory) ingestDevice(ctx context.Context, tenant, collector string,
	dev *wardv1.DiscoveredDevice, z zones) error {
	id := DeviceID(dev.GetMac(), dev.GetAddresses())
	if id == "" {
		inv.log.Warn("discovered device without MAC or address", logkey.Tenant, tenant,
			logkey.Agent, collector)
		return nil
	}
	var absorb []string
	if strings.HasPrefix(id, "mac:") {
		for _, a := range dev.GetAddresses() {
			if ip, err := netip.ParseAddr(a); err == nil {
				absorb = append(absorb, "ip:"+ip.String())
			}
		}
	}

	var before store.Device
	var isNew bool
	d, err := inv.st.UpdateDevice(ctx, tenant, id, absorb,
		func(d *store.Device, found bool, absorbed []store.Device) error {
			before, isNew = *d, !found && len(absorbed) == 0
			for _, old := range absorbed {
				mergeStored(d, &old)
			}
			inv.merge(d, collector, dev)
			inv.classifyDevice(d)
			inv.decide(d, z)
			return nil
		})
	if err != nil {
		return fmt.Errorf("ingest device %s: %w", id, err)
	}

	if isNew || before.Type != d.Type || before.State != d.State {
		if err := inv.recordClassified(ctx, d, isNew); err != nil {
			return err
		}
	}
	inv.maybeBootstrap(ctx, d)
	return nil
}

// merge folds what the collector saw now into the stored device.
func (inv *Inventory) merge(d *store.Device, collector string, dev *wardv1.DiscoveredDevice) {
	now := inv.clock().UTC()
	if m := normalMAC(dev.GetMac()); m != "" {
		d.MAC = m
	}
	for _, a := range dev.GetAddresses() {
		if ip, err := netip.ParseAddr(a); err == nil && len(d.Addresses) < maxAddresses &&
			!slices.Contains(d.Addresses, ip.String()) {
			d.Addresses = append(d.Addresses, ip.String())
		}
	}
	setIf(&d.Hostname, dev.GetHostname())
	setIf(&d.Vendor, dev.GetVendor())
	setIf(&d.OSGuess, dev.GetOsGuess())
	setIf(&d.Description, dev.GetDescription())
	for _, s := range dev.GetServices() {
		mergeService(d, store.DeviceService{Port: s.GetPort(), Protocol: clip(s.GetProtocol()),
			Name: clip(s.GetName()), Product: clip(s.GetProduct()),
			Version: clip(s.GetVersion()), Extra: clip(s.GetExtra())})
	}
	for _, m := range dev.GetMethods() {
		if m = clip(m); !slices.Contains(d.Methods, m) && len(d.Methods) < 16 {
			d.Methods = append(d.Methods, m)
		}
	}
	for k, v := range dev.GetAttributes() {
		if d.Attributes == nil {
			d.Attributes = map[string]string{}
		}
		if _, ok := d.Attributes[k]; ok || len(d.Attributes) < maxAttributes {
			d.Attributes[clip(k)] = clip(v)
		}
	}

	first, last := now, now
	if t := dev.GetFirstSeen(); t != nil {
		first = t.AsTime().UTC()
	}
	if t := dev.GetLastSeen(); t != nil {
		last = t.AsTime().UTC()
	}
	if d.FirstSeen.IsZero() || first.Before(d.FirstSeen) {
		d.FirstSeen = first
	}
	if last.After(d.LastSeen) {
		d.LastSeen = last
	}
	d.Collector = collector
}

// mergeStored folds an older record of the same device (kept under its address) in,
// keeping a state an operator set.
func mergeStored(d, old *store.Device) {
	for _, a := range old.Addresses {
		if !slices.Contains(d.Addresses, a) {
			d.Addresses = append(d.Addresses, a)
		}
	}
	for _, s := range old.Services {
		mergeService(d, s)
	}
	for _, m := range old.Methods {
		if !slices.Contains(d.Methods, m) {
			d.Methods = append(d.Methods, m)
		}
	}
	setIf(&d.Hostname, old.Hostname)
	setIf(&d.OSGuess, old.OSGuess)
	setIf(&d.Description, old.Description)
	if d.FirstSeen.IsZero() || (!old.FirstSeen.IsZero() && old.FirstSeen.Before(d.FirstSeen)) {
		d.FirstSeen = old.FirstSeen
	}
	if old.LastSeen.After(d.LastSeen) {
		d.LastSeen = old.LastSeen
	}
	if d.Health == nil {
		d.Health = old.Health
	}
	if d.State == "" || (old.StateBy != controllerActor && old.StateBy != "") {
		d.State, d.StateBy, d.StateReason = old.State, old.StateBy, old.StateReason
		d.StateChangedAt, d.AgentID = old.StateChangedAt, old.AgentID
	}
}

// mergeService adds s, replacing the entry for the same port and protocol.
func mergeService(d *store.Device, s store.DeviceService) {
	for i := range d.Services {
		if d.Services[i].Port == s.Port && d.Services[i].Protocol == s.Protocol {
			if s.Product == "" && s.Name == "" {
				return // keep what version detection found before
			}
			d.Services[i] = s
			return
		}
	}
	if len(d.Services) < maxServices {
		d.Services = append(d.Services, s)
	}
}

// classifyDevice runs the classifier on what is known about d.
func (inv *Inventory) classifyDevice(d *store.Device) {
	h := hostOf(d)
	r := inv.cls.Classify(&h)
	d.Type, d.Tier, d.ShouldMonitor = string(r.Type), int(r.Tier), r.ShouldMonitor
	d.Strategy, d.Enrollment = string(r.Strategy), string(r.Enrollment)
	d.Confidence, d.Reasons, d.Clinical = r.Confidence, r.Reasons, r.Clinical
	d.Controls = d.Controls[:0]
	for _, c := range r.Controls {
		d.Controls = append(d.Controls, c.ID)
	}
	if d.Vendor == "" {
		d.Vendor = r.Vendor
	}
}

// hostOf converts a stored device into the classifier's input. The collector sends
// service banners and script output in Extra, and SNMP's sysObjectID as the attribute
// "sys_object_id" (as the collector names it; "snmp.sysObjectID" and "sysObjectID" too).
func hostOf(d *store.Device) classify.Host {
	h := classify.Host{MAC: d.MAC, Vendor: d.Vendor, Hostname: d.Hostname,
		SysDescr: d.Description, Attributes: d.Attributes}
	if len(d.Addresses) > 0 {
		h.IP = d.Addresses[0]
	}
	if d.OSGuess != "" {
		h.OS = []classify.OSMatch{{Name: d.OSGuess}}
	}
	for _, k := range []string{"sys_object_id", "snmp.sysObjectID", "sysObjectID"} {
		if v := d.Attributes[k]; v != "" {
			h.SysObjectID = v
		}
	}
	for _, s := range d.Services {
		cs := classify.Service{Port: int(s.Port), Protocol: s.Protocol, Name: s.Name,
			Product: s.Product, Version: s.Version}
		if s.Extra != "" {
			cs.Scripts = []classify.Script{{ID: scriptID(s), Output: s.Extra}}
		}
		h.Services = append(h.Services, cs)
	}
	return h
}

// scriptID names the script whose output a service's Extra most likely holds, so the
// classifier reads a DICOM echo as such.
func scriptID(s store.DeviceService) string {
	if strings.Contains(strings.ToLower(s.Extra), "dicom service provider") {
		return "dicom-ping"
	}
	return "banner"
}

// decide sets the device's state: site exclusions first, then the automatic decision
// for states the controller owns. Operator decisions and started enrollments stay. A
// device on a passive-only subnet is never touched on the controller's own decision: what
// would be auto-enrolled or polled waits for approval instead.
func (inv *Inventory) decide(d *store.Device, z zones) {
	if p, ok := in(z.excluded, d.Addresses); ok {
		if d.State != store.DeviceExcluded {
			inv.setState(d, store.DeviceExcluded, controllerActor,
				"the site configuration excludes "+p.String())
		}
		return
	}
	if !controllerOwned(d) {
		return
	}
	st, why := autoState(d)
	if p, ok := in(z.passive, d.Addresses); ok &&
		(st == store.DeviceApproved || st == store.DeviceAgentless) {
		st, why = store.DevicePendingApproval, "on the passive-only subnet "+p.String()+
			": never touched without approval"
	}
	if st == store.DeviceApproved && d.State == store.DeviceApproved {
		return // keep the reason it carries (for example what it waits for)
	}
	inv.setState(d, st, controllerActor, why)
}

func (inv *Inventory) recordClassified(ctx context.Context, d store.Device, isNew bool) error {
	_, err := inv.cfg.Recorder.Record(ctx, evidence.Entry{Tenant: d.Tenant,
		Type:    evidence.TypeDeviceClassified,
		Actor:   evidence.Actor{Kind: evidence.ActorController, ID: controllerActor},
		Subject: d.ID, Data: map[string]any{"type": d.Type, "tier": d.Tier,
			"strategy": d.Strategy, "enrollment": d.Enrollment, "confidence": d.Confidence,
			"reasons": d.Reasons, "controls": d.Controls, "state": d.State,
			"new": isNew}})
	if err != nil {
		return fmt.Errorf("record classification of %s: %w", d.ID, err)
	}
	inv.log.Info("device classified", logkey.Tenant, d.Tenant, logkey.Device, d.ID,
		logkey.DeviceType, d.Type, logkey.State, d.State)
	return nil
}

// AgentConnected marks the tenant's devices whose addresses the agent reports as
// enrolled, linking them to the agent.
func (inv *Inventory) AgentConnected(ctx context.Context, tenant, agentID string,
	addresses []string) error {
	if len(addresses) == 0 {
		return nil
	}
	devices, err := inv.st.ListDevices(ctx, tenant, store.DeviceFilter{})
	if err != nil {
		return err
	}
	for _, d := range devices {
		if d.AgentID == agentID || !sharesAddress(d.Addresses, addresses) {
			continue
		}
		if err := inv.markEnrolled(ctx, d, agentID); err != nil {
			return err
		}
	}
	return nil
}

func (inv *Inventory) markEnrolled(ctx context.Context, d store.Device, agentID string) error {
	got, err := inv.st.UpdateDevice(ctx, d.Tenant, d.ID, nil,
		func(cur *store.Device, found bool, _ []store.Device) error {
			if !found {
				return errStale
			}
			cur.AgentID = agentID
			if cur.State != store.DeviceExcluded {
				inv.setState(cur, store.DeviceEnrolled, controllerActor,
					"agent "+agentID+" enrolled")
			}
			return nil
		})
	if errors.Is(err, errStale) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := inv.cfg.Recorder.Record(ctx, evidence.Entry{Tenant: d.Tenant,
		Type: TypeDeviceEnrolled, Actor: evidence.Actor{Kind: evidence.ActorAgent, ID: agentID},
		Subject: d.ID, Data: map[string]any{"agent": agentID, "state": got.State}}); err != nil {
		return fmt.Errorf("record enrollment of %s: %w", d.ID, err)
	}
	inv.log.Info("device enrolled", logkey.Tenant, d.Tenant, logkey.Device, d.ID,
		logkey.Agent, agentID)
	return nil
}

func sharesAddress(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// setIf replaces *dst with v when v is not empty.
func setIf(dst *string, v string) {
	if v = clip(v); v != "" {
		*dst = v
	}
}

// clip bounds a text field from the network.
func clip(s string) string {
	if len(s) > maxText {
		return s[:maxText]
	}
	return s
}
