package inventory

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/authz"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/site"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Server implements wardv1.InventoryServiceServer. Roles and tenant scope are enforced
// as in package adminapi: objects in tenants the caller cannot see answer NotFound, acts
// outside its role or tenants PermissionDenied. It is safe for concurrent use.
type Server struct {
	wardv1.UnimplementedInventoryServiceServer

	inv *Inventory
	st  Store
	log *slog.Logger
}

var _ wardv1.InventoryServiceServer = (*Server)(nil)

// NewServer returns the InventoryService of inv.
func NewServer(inv *Inventory) *Server {
	return &Server{inv: inv, st: inv.st, log: inv.log}
}

// Register adds the service to g.
func (s *Server) Register(g *grpc.Server) { wardv1.RegisterInventoryServiceServer(g, s) }

// scope is what the calling operator may see and change.
type scope struct{ op *store.Operator }

func callerScope(ctx context.Context) (scope, error) {
	c, ok := authz.CallerFrom(ctx)
	if !ok || c.Operator == nil {
		return scope{}, status.Error(codes.PermissionDenied, "permission denied")
	}
	return scope{op: c.Operator}, nil
}

func (sc scope) canSee(tenant string) bool {
	switch sc.op.Role {
	case store.RoleAdmin:
		return true
	case store.RoleTechnician:
		return slices.Contains(sc.op.Tenants, tenant)
	case store.RoleAuditor:
		return len(sc.op.Tenants) == 0 || slices.Contains(sc.op.Tenants, tenant)
	}
	return false
}

func (sc scope) canWrite(tenant string) bool {
	return sc.op.Role == store.RoleAdmin ||
		sc.op.Role == store.RoleTechnician && slices.Contains(sc.op.Tenants, tenant)
}

// tenants returns the tenants the caller sees, or only want when set (NotFound when it
// cannot see it).
func (s *Server) tenants(ctx context.Context, sc scope, want string) ([]string, error) {
	if want != "" {
		if err := s.see(ctx, sc, want); err != nil {
			return nil, err
		}
		return []string{want}, nil
	}
	all, err := s.st.ListTenants(ctx)
	if err != nil {
		return nil, s.internal("list tenants", err)
	}
	var out []string
	for _, t := range all {
		if sc.canSee(t.ID) {
			out = append(out, t.ID)
		}
	}
	return out, nil
}

// oneTenant resolves an optional tenant argument: the caller's only visible tenant when
// empty.
func (s *Server) oneTenant(ctx context.Context, sc scope, want string) (string, error) {
	ts, err := s.tenants(ctx, sc, want)
	switch {
	case err != nil:
		return "", err
	case len(ts) != 1:
		return "", status.Error(codes.InvalidArgument,
			"tenant: required (the caller sees more than one tenant)")
	}
	return ts[0], nil
}

func (s *Server) see(ctx context.Context, sc scope, tenant string) error {
	if !sc.canSee(tenant) {
		return status.Errorf(codes.NotFound, "tenant %q not found", tenant)
	}
	if _, err := s.st.GetTenant(ctx, tenant); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return status.Errorf(codes.NotFound, "tenant %q not found", tenant)
		}
		return s.internal("get tenant", err)
	}
	return nil
}

func (s *Server) act(ctx context.Context, sc scope, tenant string) error {
	if err := s.see(ctx, sc, tenant); err != nil {
		return err
	}
	if !sc.canWrite(tenant) {
		return status.Error(codes.PermissionDenied, "permission denied: read-only in "+tenant)
	}
	return nil
}

// internal logs err and returns a status that does not reveal it.
func (s *Server) internal(op string, err error) error {
	s.log.Error("inventory api", "op", op, logkey.Error, err)
	return status.Error(codes.Internal, "internal error")
}

// deviceErr maps store and state errors to statuses.
func (s *Server) deviceErr(op, id string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return status.Errorf(codes.NotFound, "device %q not found", id)
	case errors.Is(err, ErrState):
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return s.internal(op, err)
}

// ListDevices lists devices of the visible tenants.
func (s *Server) ListDevices(ctx context.Context, req *wardv1.ListDevicesRequest) (
	*wardv1.ListDevicesResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetTier() > 3 {
		return nil, status.Error(codes.InvalidArgument, "tier: want 1 to 3")
	}
	tenants, err := s.tenants(ctx, sc, req.GetTenant())
	if err != nil {
		return nil, err
	}
	f := store.DeviceFilter{Type: req.GetType(), Tier: int(req.GetTier()),
		State: stateFromProto(req.GetState())}
	resp := &wardv1.ListDevicesResponse{}
	for _, t := range tenants {
		ds, err := s.st.ListDevices(ctx, t, f)
		if err != nil {
			return nil, s.internal("list devices", err)
		}
		for _, d := range ds {
			resp.Devices = append(resp.Devices, deviceProto(d))
		}
	}
	return resp, nil
}

// findDevice resolves a device argument: an id, or a bare MAC or address.
func (s *Server) findDevice(ctx context.Context, tenant, arg string) (store.Device, error) {
	ids := []string{arg}
	if !strings.HasPrefix(arg, "mac:") && !strings.HasPrefix(arg, "ip:") {
		ids = []string{DeviceID(arg, nil), DeviceID("", []string{arg})}
	}
	for _, id := range ids {
		if id == "" {
			continue
		}
		d, err := s.st.GetDevice(ctx, tenant, id)
		if err == nil || !errors.Is(err, store.ErrNotFound) {
			return d, err
		}
	}
	if ip, err := netip.ParseAddr(arg); err == nil { // an address of a MAC-keyed device
		ds, err := s.st.ListDevices(ctx, tenant, store.DeviceFilter{})
		if err != nil {
			return store.Device{}, err
		}
		for _, d := range ds {
			if slices.Contains(d.Addresses, ip.String()) {
				return d, nil
			}
		}
	}
	return store.Device{}, store.ErrNotFound
}

// GetDevice shows one device.
func (s *Server) GetDevice(ctx context.Context, req *wardv1.GetDeviceRequest) (
	*wardv1.GetDeviceResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	tenant, err := s.oneTenant(ctx, sc, req.GetTenant())
	if err != nil {
		return nil, err
	}
	d, err := s.findDevice(ctx, tenant, req.GetId())
	if err != nil {
		return nil, s.deviceErr("get device", req.GetId(), err)
	}
	return &wardv1.GetDeviceResponse{Device: deviceProto(d)}, nil
}

// ApproveDevice approves a device waiting for a person.
func (s *Server) ApproveDevice(ctx context.Context, req *wardv1.ApproveDeviceRequest) (
	*wardv1.ApproveDeviceResponse, error) {
	sc, tenant, d, err := s.actOnDevice(ctx, req.GetTenant(), req.GetId())
	if err != nil {
		return nil, err
	}
	got, err := s.inv.Approve(ctx, tenant, d.ID, sc.op.Name)
	if err != nil {
		return nil, s.deviceErr("approve device", req.GetId(), err)
	}
	return &wardv1.ApproveDeviceResponse{Device: deviceProto(got)}, nil
}

// ExcludeDevice excludes a device, with a reason.
func (s *Server) ExcludeDevice(ctx context.Context, req *wardv1.ExcludeDeviceRequest) (
	*wardv1.ExcludeDeviceResponse, error) {
	reason := strings.TrimSpace(req.GetReason())
	if reason == "" || len(reason) > 512 {
		return nil, status.Error(codes.InvalidArgument, "reason: required, at most 512 bytes")
	}
	sc, tenant, d, err := s.actOnDevice(ctx, req.GetTenant(), req.GetId())
	if err != nil {
		return nil, err
	}
	got, err := s.inv.Exclude(ctx, tenant, d.ID, sc.op.Name, reason)
	if err != nil {
		return nil, s.deviceErr("exclude device", req.GetId(), err)
	}
	return &wardv1.ExcludeDeviceResponse{Device: deviceProto(got)}, nil
}

// actOnDevice checks that the caller may act on the device and finds it.
func (s *Server) actOnDevice(ctx context.Context, tenantArg, id string) (scope, string,
	store.Device, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return scope{}, "", store.Device{}, err
	}
	tenant, err := s.oneTenant(ctx, sc, tenantArg)
	if err != nil {
		return scope{}, "", store.Device{}, err
	}
	d, err := s.findDevice(ctx, tenant, id)
	if err != nil {
		return scope{}, "", store.Device{}, s.deviceErr("find device", id, err)
	}
	if err := s.act(ctx, sc, tenant); err != nil {
		return scope{}, "", store.Device{}, err
	}
	return sc, tenant, d, nil
}

// GetDiscoveryStatus lists the latest scan of each collector.
func (s *Server) GetDiscoveryStatus(ctx context.Context,
	req *wardv1.GetDiscoveryStatusRequest) (*wardv1.GetDiscoveryStatusResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	tenants, err := s.tenants(ctx, sc, req.GetTenant())
	if err != nil {
		return nil, err
	}
	resp := &wardv1.GetDiscoveryStatusResponse{}
	for _, t := range tenants {
		scans, err := s.st.ListScans(ctx, t)
		if err != nil {
			return nil, s.internal("list scans", err)
		}
		n, err := s.st.CountDevices(ctx, t)
		if err != nil {
			return nil, s.internal("count devices", err)
		}
		for _, x := range scans {
			resp.Scans = append(resp.Scans, &wardv1.ScanStatus{Tenant: x.Tenant,
				Collector: x.Collector, ScanId: x.ScanID, Subnet: x.Subnet,
				HostsDone: x.HostsDone, HostsFound: x.HostsFound, Complete: x.Complete,
				Error: x.Error, StartedAt: ts(x.StartedAt), UpdatedAt: ts(x.UpdatedAt),
				Devices: uint32(n)})
		}
	}
	return resp, nil
}

// GetSiteConfig returns a tenant's site configuration, secrets withheld.
func (s *Server) GetSiteConfig(ctx context.Context, req *wardv1.GetSiteConfigRequest) (
	*wardv1.GetSiteConfigResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	tenant, err := s.oneTenant(ctx, sc, req.GetTenant())
	if err != nil {
		return nil, err
	}
	c, err := s.st.GetSiteConfig(ctx, tenant)
	if errors.Is(err, store.ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "tenant %q has no site configuration", tenant)
	}
	if err != nil {
		return nil, s.internal("get site config", err)
	}
	return &wardv1.GetSiteConfigResponse{Config: siteConfigProto(c)}, nil
}

// SetSiteConfig validates and replaces a tenant's site configuration, then hands it to
// the SitePublisher when there is one.
func (s *Server) SetSiteConfig(ctx context.Context, req *wardv1.SetSiteConfigRequest) (
	*wardv1.SetSiteConfigResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	tenant, err := s.oneTenant(ctx, sc, req.GetTenant())
	if err != nil {
		return nil, err
	}
	if err := s.act(ctx, sc, tenant); err != nil {
		return nil, err
	}
	if req.GetConfig() == nil {
		return nil, status.Error(codes.InvalidArgument, "config: required")
	}
	cfg := siteConfigFromProto(req.GetConfig())
	if old, err := s.st.GetSiteConfig(ctx, tenant); err == nil {
		keepSecrets(&cfg, old.Config)
	}
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return nil, status.Error(codes.InvalidArgument, "config: "+err.Error())
	}

	stored := store.SiteConfig{Config: cfg, UpdatedAt: s.inv.clock().UTC(),
		UpdatedBy: sc.op.Name}
	if err := s.st.PutSiteConfig(ctx, tenant, stored); err != nil {
		return nil, s.internal("put site config", err)
	}
	s.log.Info("site configuration set", logkey.Tenant, tenant, logkey.Operator, sc.op.Name,
		logkey.Count, len(cfg.Subnets))
	if p := s.inv.cfg.Sites; p != nil {
		if err := p.PublishSiteConfig(ctx, tenant, cfg); err != nil {
			s.log.Warn("publish site configuration", logkey.Tenant, tenant, logkey.Error, err)
		}
	}
	return &wardv1.SetSiteConfigResponse{Config: siteConfigProto(stored)}, nil
}

// siteConfigFromProto converts a configuration; pkg/site validates it.
func siteConfigFromProto(p *wardv1.SiteConfig) site.Config {
	c := site.Config{Subnets: trimAll(p.GetSubnets()),
		PassiveSubnets: trimAll(p.GetPassiveSubnets()), Exclude: trimAll(p.GetExcluded()),
		ProbeRate: int(p.GetProbeRate()), Interface: p.GetInterface(), Ports: p.GetPorts()}
	if d := p.GetScanInterval(); d != nil {
		c.Schedule.Interval = site.Duration(d.AsDuration())
	}
	if d := p.GetPollInterval(); d != nil {
		c.Poll.Interval = site.Duration(d.AsDuration())
	}
	for _, cr := range p.GetSnmp() {
		c.SNMP = append(c.SNMP, site.SNMPCredential{Version: cr.GetVersion(),
			User: cr.GetUser(), AuthProtocol: cr.GetAuthProtocol(),
			AuthPassphrase: cr.GetAuthSecret(), PrivProtocol: cr.GetPrivProtocol(),
			PrivPassphrase: cr.GetPrivSecret(), Community: cr.GetCommunity()})
	}
	return c
}

func trimAll(in []string) []string {
	out := make([]string, 0, len(in))
	for _, v := range in {
		out = append(out, strings.TrimSpace(v))
	}
	return out
}

// keepSecrets carries stored secrets over to credentials given without them (same
// position, version and user), so an operator can change a configuration without
// retyping secrets that reads never show.
func keepSecrets(c *site.Config, old site.Config) {
	for i := range c.SNMP {
		if i >= len(old.SNMP) {
			return
		}
		n, o := &c.SNMP[i], old.SNMP[i]
		if n.Version != o.Version || n.User != o.User {
			continue
		}
		if n.AuthPassphrase == "" {
			n.AuthPassphrase = o.AuthPassphrase
		}
		if n.PrivPassphrase == "" && n.PrivProtocol != "" {
			n.PrivPassphrase = o.PrivPassphrase
		}
		if n.Community == "" {
			n.Community = o.Community
		}
	}
}

func siteConfigProto(sc store.SiteConfig) *wardv1.SiteConfig {
	c := sc.Config
	p := &wardv1.SiteConfig{Subnets: c.Subnets, PassiveSubnets: c.PassiveSubnets,
		Excluded: c.Exclude, ProbeRate: uint32(c.ProbeRate), UpdatedAt: ts(sc.UpdatedAt),
		UpdatedBy: sc.UpdatedBy, Interface: c.Interface, Ports: c.Ports,
		Warnings: c.Warnings()}
	if c.Schedule.Interval > 0 {
		p.ScanInterval = durationpb.New(time.Duration(c.Schedule.Interval))
	}
	if c.Poll.Interval > 0 {
		p.PollInterval = durationpb.New(time.Duration(c.Poll.Interval))
	}
	for _, cr := range c.SNMP {
		p.Snmp = append(p.Snmp, &wardv1.SNMPCredential{Version: cr.Version, User: cr.User,
			AuthProtocol: cr.AuthProtocol, PrivProtocol: cr.PrivProtocol,
			AuthSecretSet: cr.AuthPassphrase != "", PrivSecretSet: cr.PrivPassphrase != "",
			CommunitySet: cr.Community != ""})
	}
	return p
}

func deviceProto(d store.Device) *wardv1.Device {
	p := &wardv1.Device{Id: d.ID, Tenant: d.Tenant, Mac: d.MAC, Addresses: d.Addresses,
		Hostname: d.Hostname, Vendor: d.Vendor, OsGuess: d.OSGuess, Methods: d.Methods,
		FirstSeen: ts(d.FirstSeen), LastSeen: ts(d.LastSeen), Collector: d.Collector,
		Type: d.Type, Tier: uint32(d.Tier), ShouldMonitor: d.ShouldMonitor,
		Strategy: d.Strategy, Enrollment: d.Enrollment, Confidence: d.Confidence,
		Reasons: d.Reasons, Controls: d.Controls, State: stateProto(d.State),
		StateReason: d.StateReason, StateBy: d.StateBy,
		StateChangedAt: ts(d.StateChangedAt), AgentId: d.AgentID,
		Description: d.Description}
	for _, s := range d.Services {
		p.Services = append(p.Services, &wardv1.DiscoveredService{Port: s.Port,
			Protocol: s.Protocol, Name: s.Name, Product: s.Product, Version: s.Version,
			Extra: s.Extra})
	}
	p.Health = healthProto(d.Health)
	return p
}

// healthProto converts a polled device's health; nil before the first poll.
func healthProto(h *store.DeviceHealth) *wardv1.DeviceHealth {
	if h == nil {
		return nil
	}
	p := &wardv1.DeviceHealth{LastPoll: ts(h.LastPoll), Reachable: h.Reachable,
		Since: ts(h.Since), ConsecutiveFailures: uint32(h.ConsecutiveFailures),
		UptimeSeconds: h.UptimeCentis / 100, LastRestart: ts(h.LastRestart),
		Error: h.Error, Incident: h.Incident}
	for _, ifc := range h.Interfaces {
		p.Interfaces = append(p.Interfaces, &wardv1.InterfaceHealth{Index: ifc.Index,
			Name: ifc.Name, Status: ifc.Status, InErrors: ifc.InErrors,
			OutErrors: ifc.OutErrors, NewErrors: ifc.NewErrors})
	}
	return p
}

var stateToProto = map[store.DeviceState]wardv1.DeviceState{
	store.DeviceDiscovered:      wardv1.DeviceState_DEVICE_STATE_DISCOVERED,
	store.DevicePendingApproval: wardv1.DeviceState_DEVICE_STATE_PENDING_APPROVAL,
	store.DeviceApproved:        wardv1.DeviceState_DEVICE_STATE_APPROVED,
	store.DeviceEnrolling:       wardv1.DeviceState_DEVICE_STATE_ENROLLING,
	store.DeviceEnrolled:        wardv1.DeviceState_DEVICE_STATE_ENROLLED,
	store.DeviceAgentless:       wardv1.DeviceState_DEVICE_STATE_AGENTLESS,
	store.DeviceExcluded:        wardv1.DeviceState_DEVICE_STATE_EXCLUDED,
	store.DeviceFailed:          wardv1.DeviceState_DEVICE_STATE_FAILED,
}

func stateProto(s store.DeviceState) wardv1.DeviceState { return stateToProto[s] }

func stateFromProto(p wardv1.DeviceState) store.DeviceState {
	for s, v := range stateToProto {
		if v == p {
			return s
		}
	}
	return ""
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
