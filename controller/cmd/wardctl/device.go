package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// callInventory dials the controller like call, with an InventoryService client.
func (a *app) callInventory(fn func(context.Context, wardv1.InventoryServiceClient) error) error {
	if a.cert == "" || a.key == "" || a.ca == "" {
		return errors.New("no operator credentials: set --cert, --key and --ca " +
			"(or WARD_CERT, WARD_KEY and WARD_CA)")
	}
	pair, err := pki.LoadKeyPair(a.cert, a.key)
	if err != nil {
		return err
	}
	roots, err := pki.LoadPool(a.ca)
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(a.controller)
	if err != nil {
		return fmt.Errorf("--controller %q: want host:port", a.controller)
	}
	cfg := pki.ClientConfig(roots, host, func() (*tls.Certificate, error) { return &pair, nil })
	conn, err := grpc.NewClient(a.controller, grpc.WithTransportCredentials(
		credentials.NewTLS(cfg)))
	if err != nil {
		return fmt.Errorf("connect %s: %w", a.controller, err)
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	return fn(ctx, wardv1.NewInventoryServiceClient(conn))
}

// deviceStates maps the words of --state to the protocol's states.
var deviceStates = map[string]wardv1.DeviceState{
	"discovered":       wardv1.DeviceState_DEVICE_STATE_DISCOVERED,
	"pending_approval": wardv1.DeviceState_DEVICE_STATE_PENDING_APPROVAL,
	"approved":         wardv1.DeviceState_DEVICE_STATE_APPROVED,
	"enrolling":        wardv1.DeviceState_DEVICE_STATE_ENROLLING,
	"enrolled":         wardv1.DeviceState_DEVICE_STATE_ENROLLED,
	"agentless":        wardv1.DeviceState_DEVICE_STATE_AGENTLESS,
	"excluded":         wardv1.DeviceState_DEVICE_STATE_EXCLUDED,
	"failed":           wardv1.DeviceState_DEVICE_STATE_FAILED,
}

// stateWord is the --state word of s.
func stateWord(s wardv1.DeviceState) string {
	for w, v := range deviceStates {
		if v == s {
			return w
		}
	}
	return "-"
}

func (a *app) deviceCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "device", Aliases: []string{"devices"},
		Short: "The device inventory: list, show, approve and exclude discovered devices"}

	var tenant, typ, state string
	var tier uint32
	list := &cobra.Command{
		Use: "list", Short: "List discovered devices", Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			req := &wardv1.ListDevicesRequest{Tenant: tenant, Type: typ, Tier: tier}
			if state != "" {
				st, ok := deviceStates[strings.ReplaceAll(state, " ", "_")]
				if !ok {
					return fmt.Errorf("--state %q: want one of discovered, pending_approval, "+
						"approved, enrolling, enrolled, agentless, excluded, failed", state)
				}
				req.State = st
			}
			return a.callInventory(func(ctx context.Context,
				c wardv1.InventoryServiceClient) error {
				resp, err := c.ListDevices(ctx, req)
				if err != nil {
					return err
				}
				if a.output == "json" {
					return printJSONList(a, resp.Devices)
				}
				return a.deviceTable(resp.Devices)
			})
		},
	}
	list.Flags().StringVar(&tenant, "tenant", "", "only this tenant")
	list.Flags().StringVar(&typ, "type", "", "only this type, for example printer")
	list.Flags().Uint32Var(&tier, "tier", 0, "only this tier (1 to 3)")
	list.Flags().StringVar(&state, "state", "", "only this state, for example pending_approval")

	cmd.AddCommand(list, a.deviceShow(), a.deviceApprove(), a.deviceExclude())
	return cmd
}

func (a *app) deviceShow() *cobra.Command {
	var tenant string
	show := &cobra.Command{
		Use: "show ID|MAC|ADDRESS", Short: "Show one device and why it was classified so",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.callInventory(func(ctx context.Context,
				c wardv1.InventoryServiceClient) error {
				resp, err := c.GetDevice(ctx, &wardv1.GetDeviceRequest{Tenant: tenant,
					Id: args[0]})
				if err != nil {
					return err
				}
				return a.printDevice(resp.Device)
			})
		},
	}
	show.Flags().StringVar(&tenant, "tenant", "", "tenant of the device (needed when "+
		"the operator sees several)")
	return show
}

func (a *app) deviceApprove() *cobra.Command {
	var tenant string
	approve := &cobra.Command{
		Use: "approve ID|MAC|ADDRESS", Short: "Let Ward watch a device that waits for approval",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.callInventory(func(ctx context.Context,
				c wardv1.InventoryServiceClient) error {
				resp, err := c.ApproveDevice(ctx, &wardv1.ApproveDeviceRequest{
					Tenant: tenant, Id: args[0]})
				if err != nil {
					return err
				}
				return a.printDevice(resp.Device)
			})
		},
	}
	approve.Flags().StringVar(&tenant, "tenant", "", "tenant of the device")
	return approve
}

func (a *app) deviceExclude() *cobra.Command {
	var tenant, reason string
	exclude := &cobra.Command{
		Use:   "exclude ID|MAC|ADDRESS --reason TEXT",
		Short: "Take a device out of monitoring and enrollment", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return errors.New("--reason: required")
			}
			return a.callInventory(func(ctx context.Context,
				c wardv1.InventoryServiceClient) error {
				resp, err := c.ExcludeDevice(ctx, &wardv1.ExcludeDeviceRequest{
					Tenant: tenant, Id: args[0], Reason: reason})
				if err != nil {
					return err
				}
				return a.printDevice(resp.Device)
			})
		},
	}
	exclude.Flags().StringVar(&tenant, "tenant", "", "tenant of the device")
	exclude.Flags().StringVar(&reason, "reason", "", "why the device is excluded (required)")
	return exclude
}

func (a *app) deviceTable(ds []*wardv1.Device) error {
	rows := make([][]string, 0, len(ds))
	for _, d := range ds {
		rows = append(rows, []string{d.Tenant, d.Id, orDash(strings.Join(d.Addresses, ",")),
			orDash(d.Vendor), d.Type, strconv.Itoa(int(d.Tier)), d.Strategy,
			fmt.Sprintf("%.2f", d.Confidence), stateWord(d.State), healthWord(d.Health)})
	}
	return a.table([]string{"TENANT", "ID", "ADDRESSES", "VENDOR", "TYPE", "TIER",
		"STRATEGY", "CONFIDENCE", "STATE", "HEALTH"}, rows)
}

// healthWord sums up a polled device's health: "up", "down" (with the missed polls), or
// "-" for a device that is not polled or not yet.
func healthWord(h *wardv1.DeviceHealth) string {
	switch {
	case h == nil:
		return "-"
	case h.Reachable:
		return "up"
	}
	return fmt.Sprintf("down (%d polls)", h.ConsecutiveFailures)
}

// healthRows are the health details of a polled device for device show.
func healthRows(h *wardv1.DeviceHealth) [][]string {
	if h == nil {
		return [][]string{{"health", "- (not polled)"}}
	}
	rows := [][]string{
		{"health", healthWord(h)}, {"health since", when(h.Since)},
		{"last poll", when(h.LastPoll)},
		{"uptime", (time.Duration(h.UptimeSeconds) * time.Second).String()},
		{"last restart", when(h.LastRestart)},
		{"poll error", orDash(h.Error)}, {"incident", orDash(h.Incident)},
	}
	for _, i := range h.Interfaces {
		rows = append(rows, []string{"interface", fmt.Sprintf(
			"%d %s %s: in errors %d, out errors %d, new errors %d", i.Index, orDash(i.Name),
			orDash(i.Status), i.InErrors, i.OutErrors, i.NewErrors)})
	}
	return rows
}

func (a *app) printDevice(d *wardv1.Device) error {
	if a.output == "json" {
		return a.printJSON(d)
	}
	rows := [][]string{
		{"id", d.Id}, {"tenant", d.Tenant}, {"mac", orDash(d.Mac)},
		{"addresses", orDash(strings.Join(d.Addresses, ", "))},
		{"hostname", orDash(d.Hostname)}, {"vendor", orDash(d.Vendor)},
		{"os", orDash(d.OsGuess)}, {"methods", orDash(strings.Join(d.Methods, ", "))},
		{"type", d.Type}, {"tier", strconv.Itoa(int(d.Tier))},
		{"strategy", d.Strategy}, {"enrollment", d.Enrollment},
		{"monitored by default", yesNo(d.ShouldMonitor)},
		{"confidence", fmt.Sprintf("%.2f", d.Confidence)},
		{"controls", orDash(strings.Join(d.Controls, ", "))},
		{"state", stateWord(d.State)}, {"state reason", orDash(d.StateReason)},
		{"state by", orDash(d.StateBy)}, {"state since", when(d.StateChangedAt)},
		{"agent", orDash(d.AgentId)}, {"collector", orDash(d.Collector)},
		{"first seen", when(d.FirstSeen)}, {"last seen", when(d.LastSeen)},
	}
	for _, r := range d.Reasons {
		rows = append(rows, []string{"reason", r})
	}
	if d.Health != nil || d.Strategy == "snmp" {
		rows = append(rows, healthRows(d.Health)...)
	}
	for _, s := range d.Services {
		rows = append(rows, []string{"service", strings.TrimSpace(fmt.Sprintf("%d/%s %s %s %s",
			s.Port, s.Protocol, s.Name, s.Product, s.Version))})
	}
	return a.table([]string{"FIELD", "VALUE"}, rows)
}

// discoveryCommand shows scan progress.
func (a *app) discoveryCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "discovery", Short: "Discovery scans: progress of each collector"}
	var tenant string
	st := &cobra.Command{
		Use: "status", Short: "The latest scan of each collector", Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return a.callInventory(func(ctx context.Context,
				c wardv1.InventoryServiceClient) error {
				resp, err := c.GetDiscoveryStatus(ctx, &wardv1.GetDiscoveryStatusRequest{
					Tenant: tenant})
				if err != nil {
					return err
				}
				if a.output == "json" {
					return printJSONList(a, resp.Scans)
				}
				rows := make([][]string, 0, len(resp.Scans))
				for _, s := range resp.Scans {
					progress := "running"
					switch {
					case s.Error != "":
						progress = "stopped: " + s.Error
					case s.Complete:
						progress = "complete"
					}
					rows = append(rows, []string{s.Tenant, s.Collector, s.ScanId,
						orDash(s.Subnet), strconv.Itoa(int(s.HostsDone)),
						strconv.Itoa(int(s.HostsFound)), strconv.Itoa(int(s.Devices)),
						progress, when(s.UpdatedAt)})
				}
				return a.table([]string{"TENANT", "COLLECTOR", "SCAN", "SUBNET", "DONE",
					"FOUND", "DEVICES", "PROGRESS", "UPDATED"}, rows)
			})
		},
	}
	st.Flags().StringVar(&tenant, "tenant", "", "only this tenant")
	cmd.AddCommand(st)
	return cmd
}

// siteCommand reads and sets a tenant's site configuration.
func (a *app) siteCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "site", Short: "A tenant's site configuration: what the " +
		"collector scans and how"}

	var tenant string
	get := &cobra.Command{
		Use: "get", Short: "Show the site configuration (secrets are never shown)",
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return a.callInventory(func(ctx context.Context,
				c wardv1.InventoryServiceClient) error {
				resp, err := c.GetSiteConfig(ctx, &wardv1.GetSiteConfigRequest{Tenant: tenant})
				if err != nil {
					return err
				}
				return a.printSiteConfig(resp.Config)
			})
		},
	}
	get.Flags().StringVar(&tenant, "tenant", "", "tenant (needed when the operator sees several)")

	var p siteFlags
	set := &cobra.Command{
		Use: "set", Short: "Replace the site configuration", Args: cobra.NoArgs,
		Long: "Set replaces the whole configuration. SNMP credentials are given as " +
			"v3:USER:AUTHPROTO:AUTHSECRET-FILE:PRIVPROTO:PRIVSECRET-FILE (authPriv), " +
			"v3:USER:AUTHPROTO:AUTHSECRET-FILE (authNoPriv) or v2c:COMMUNITY-FILE; secrets " +
			"are read from files so they stay out of shell history, and an empty file name " +
			"keeps the stored secret. Passive-only subnets are never probed, even where " +
			"they overlap a scanned subnet.",
		RunE: func(_ *cobra.Command, _ []string) error {
			cfg, err := p.config()
			if err != nil {
				return err
			}
			return a.callInventory(func(ctx context.Context,
				c wardv1.InventoryServiceClient) error {
				resp, err := c.SetSiteConfig(ctx, &wardv1.SetSiteConfigRequest{
					Tenant: p.tenant, Config: cfg})
				if err != nil {
					return err
				}
				return a.printSiteConfig(resp.Config)
			})
		},
	}
	f := set.Flags()
	f.StringVar(&p.tenant, "tenant", "", "tenant (needed when the operator sees several)")
	f.StringSliceVar(&p.subnets, "subnet", nil, "subnet to scan actively, CIDR (repeatable)")
	f.StringSliceVar(&p.passive, "passive-subnet", nil,
		"subnet never probed actively, CIDR (repeatable)")
	f.StringSliceVar(&p.excluded, "exclude", nil, "address or CIDR never scanned (repeatable)")
	f.StringArrayVar(&p.snmp, "snmp", nil, "SNMP credential (repeatable; see above)")
	f.DurationVar(&p.interval, "scan-interval", 0, "time between scans (default 24h)")
	f.DurationVar(&p.pollInterval, "poll-interval", 0, "time between two SNMP polls of "+
		"each agentless device (default 60s, 10s to 15m)")
	f.Uint32Var(&p.rate, "probe-rate", 0, "probes per second at most (default 300)")
	f.StringVar(&p.iface, "interface", "", "network interface for passive listening")
	f.StringVar(&p.ports, "ports", "", "TCP ports to probe, nmap syntax (default: the "+
		"collector's clinic list)")

	cmd.AddCommand(get, set)
	return cmd
}

type siteFlags struct {
	tenant                     string
	subnets, passive, excluded []string
	snmp                       []string
	interval, pollInterval     time.Duration
	rate                       uint32
	iface, ports               string
}

func (p *siteFlags) config() (*wardv1.SiteConfig, error) {
	cfg := &wardv1.SiteConfig{Subnets: p.subnets, PassiveSubnets: p.passive,
		Excluded: p.excluded, ProbeRate: p.rate, Interface: p.iface, Ports: p.ports}
	if p.interval > 0 {
		cfg.ScanInterval = durationpb.New(p.interval)
	}
	if p.pollInterval > 0 {
		cfg.PollInterval = durationpb.New(p.pollInterval)
	}
	for i, s := range p.snmp {
		cred, err := snmpFlag(s)
		if err != nil {
			return nil, fmt.Errorf("--snmp #%d: %w", i+1, err)
		}
		cfg.Snmp = append(cfg.Snmp, cred)
	}
	return cfg, nil
}

// snmpFlag parses one --snmp value, reading secrets from the files it names.
func snmpFlag(s string) (*wardv1.SNMPCredential, error) {
	parts := strings.Split(s, ":")
	switch {
	case parts[0] == "v2c" && len(parts) == 2:
		community, err := readSecret(parts[1])
		return &wardv1.SNMPCredential{Version: "v2c", Community: community}, err
	case parts[0] == "v3" && (len(parts) == 4 || len(parts) == 6):
		auth, err := readSecret(parts[3])
		if err != nil {
			return nil, err
		}
		cred := &wardv1.SNMPCredential{Version: "v3", User: parts[1], AuthProtocol: parts[2],
			AuthSecret: auth}
		if len(parts) == 6 {
			cred.PrivProtocol = parts[4]
			cred.PrivSecret, err = readSecret(parts[5])
		}
		return cred, err
	}
	return nil, errors.New("want v3:USER:AUTHPROTO:AUTHFILE[:PRIVPROTO:PRIVFILE] or v2c:FILE")
}

func (a *app) printSiteConfig(c *wardv1.SiteConfig) error {
	if a.output == "json" {
		return a.printJSON(c)
	}
	interval := "24h0m0s (default)"
	if c.ScanInterval != nil {
		interval = c.ScanInterval.AsDuration().String()
	}
	poll := "1m0s (default)"
	if c.PollInterval != nil {
		poll = c.PollInterval.AsDuration().String()
	}
	rows := [][]string{
		{"subnets", orDash(strings.Join(c.Subnets, ", "))},
		{"passive-only subnets", orDash(strings.Join(c.PassiveSubnets, ", "))},
		{"excluded", orDash(strings.Join(c.Excluded, ", "))},
		{"scan interval", interval}, {"poll interval", poll},
		{"probe rate", strconv.Itoa(int(c.ProbeRate))},
		{"interface", orDash(c.Interface)}, {"ports", orDash(c.Ports)},
		{"updated", when(c.UpdatedAt)}, {"updated by", orDash(c.UpdatedBy)},
	}
	for _, s := range c.Snmp {
		desc := "v2c community set: " + yesNo(s.CommunitySet)
		if s.Version == "v3" {
			desc = fmt.Sprintf("v3 user %s auth %s (set: %s) priv %s (set: %s)", s.User,
				s.AuthProtocol, yesNo(s.AuthSecretSet), orDash(s.PrivProtocol),
				yesNo(s.PrivSecretSet))
		}
		rows = append(rows, []string{"snmp", desc})
	}
	for _, w := range c.Warnings {
		rows = append(rows, []string{"warning", w})
	}
	return a.table([]string{"FIELD", "VALUE"}, rows)
}

// readSecret reads a secret from a file, trimmed; an empty name means "keep the stored
// one" and gives "".
func readSecret(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	return strings.TrimSpace(string(raw)), nil
}
