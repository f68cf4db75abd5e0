// Package inventory keeps each tenant's device inventory. It reads the discovery reports
// collectors send (only after they are durably stored), merges them into one record per
// device (keyed by MAC address, else by address), classifies each device with
// pkg/classify, and decides its state: what Ward does with it next. Operators approve
// and exclude devices through the InventoryService (api.go).
//
// Known limitation: installing agents over SSH belongs to the collector. The inventory
// decides which devices should get one and calls a Bootstrapper; until one is configured,
// auto-enrolled devices stay approved with a reason saying the bootstrap is not available.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/metrics"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/classify"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/site"
)

// Evidence record types of operator acts on devices (the classification and scan records
// use evidence.TypeDeviceClassified and evidence.TypeDiscoveryCompleted).
const (
	TypeDeviceApproved = "device.approved" // subject: device id; actor: approver
	TypeDeviceExcluded = "device.excluded" // subject: device id; data: reason
	TypeDeviceEnrolled = "device.enrolled" // subject: device id; data: agent id
	// TypeDeviceBootstrapFailed: subject: device id; data: step, reason.
	TypeDeviceBootstrapFailed = "device.bootstrap_failed"
)

// controllerActor is StateBy for decisions the controller takes itself.
const controllerActor = "controller"

// Store is what the inventory needs from the controller's store.
type Store interface {
	store.Inventory
	GetTenant(ctx context.Context, id string) (store.Tenant, error)
	ListTenants(ctx context.Context) ([]store.Tenant, error)
	ListMessages(ctx context.Context, tenant, agent string, after uint64, limit int) (
		[]store.Message, error)
	CreateToken(ctx context.Context, t store.Token) error
	GetAgent(ctx context.Context, id string) (store.Agent, error)
}

// BootstrapRequest asks a tenant's collector to install an agent on a device.
type BootstrapRequest struct {
	Tenant    string
	Collector string // agent id of the collector that reported the device
	DeviceID  string
	Address   string // address to reach the device at
	Hostname  string
	Type      string // classified type, for example "linux_server"
	Tier      int
	// TokenID and Token are a fresh one-time enrollment token for the new agent, usable
	// only from Address and for BootstrapTokenTTL. Token is a secret: the Bootstrapper
	// passes it to the collector (inside a signed command) and never logs it.
	TokenID string
	Token   string
}

// Bootstrapper starts an agent installation on a device, for example by sending the
// collector a signed bootstrap command. Bootstrap returns once the request is on its
// way; the device becomes enrolled when its agent connects. It must be safe for
// concurrent use and must not hold or log SSH secrets.
type Bootstrapper interface {
	Bootstrap(ctx context.Context, req BootstrapRequest) error
}

// SitePublisher hands a tenant's new site configuration to its collectors, for example
// as a signed payload on their streams. It must not log the configuration's secrets
// (site.SNMPCredential redacts them in logs).
type SitePublisher interface {
	PublishSiteConfig(ctx context.Context, tenant string, c site.Config) error
}

// Config configures an Inventory.
type Config struct {
	// Store holds the inventory; required.
	Store Store
	// Classifier classifies devices; nil means classify.New(nil) (embedded vendor table).
	Classifier *classify.Classifier
	// Recorder gets classification, scan, approval and exclusion records; nil discards.
	Recorder evidence.Recorder
	// Bootstrapper installs agents on auto-enrolled and approved devices; nil leaves them
	// approved, waiting.
	Bootstrapper Bootstrapper
	// Sites gets each site configuration an operator sets, to push it to the tenant's
	// collectors; nil stores it only.
	Sites SitePublisher
	// Incidents opens and resolves device-down incidents of polled devices; nil opens
	// none (the health is still kept).
	Incidents DeviceIncidents
	// DownAfter is how many polls in a row a device may miss before its device-down
	// incident opens; zero means DefaultDownAfter.
	DownAfter int
	// Metrics counts ignored device polls; nil counts nothing.
	Metrics *metrics.Metrics
	// Log is required.
	Log *slog.Logger
	// Clock returns the time; nil means time.Now.
	Clock func() time.Time
}

// Inventory merges discovery reports into devices and keeps their state. It is safe for
// concurrent use.
type Inventory struct {
	cfg   Config
	st    Store
	log   *slog.Logger
	clock func() time.Time
	cls   *classify.Classifier
}

// New checks cfg and returns an Inventory.
func New(cfg Config) (*Inventory, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("inventory: no store")
	case cfg.Log == nil:
		return nil, errors.New("inventory: no logger")
	}
	if cfg.Classifier == nil {
		cfg.Classifier = classify.New(nil)
	}
	if cfg.Recorder == nil {
		cfg.Recorder = evidence.Discard
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Inventory{cfg: cfg, st: cfg.Store, log: cfg.Log, clock: cfg.Clock,
		cls: cfg.Classifier}, nil
}

// ErrState means the device's state or type does not allow the act.
var ErrState = errors.New("inventory: not allowed in this state")

// autoState decides the state the controller gives a device of the classification in d.
// Clinical devices always wait for a person, whatever the type says.
func autoState(d *store.Device) (store.DeviceState, string) {
	switch {
	case d.Clinical || d.Tier == 3:
		return store.DevicePendingApproval, "clinical device: waits for approval"
	case d.Type == string(classify.Unknown) || d.Enrollment == string(classify.EnrollNone):
		return store.DeviceDiscovered, "not watched by default"
	case d.Enrollment == string(classify.EnrollManual):
		return store.DevicePendingApproval, "manual enrollment: waits for approval"
	case d.Strategy == string(classify.StrategyAgent):
		return store.DeviceApproved, "auto-enrollment of a " + d.Type
	case d.Strategy == string(classify.StrategySNMP) ||
		d.Strategy == string(classify.StrategyPassive):
		return store.DeviceAgentless, "watched without an agent (" + d.Strategy + ")"
	}
	return store.DeviceDiscovered, "nothing to do"
}

// controllerOwned reports whether the controller may change d's state on its own: states
// it set itself and that no enrollment has started from.
func controllerOwned(d *store.Device) bool {
	if d.StateBy != controllerActor && d.StateBy != "" {
		return false
	}
	switch d.State {
	case "", store.DeviceDiscovered, store.DevicePendingApproval, store.DeviceAgentless,
		store.DeviceApproved:
		return true
	}
	return false
}

// setState changes d's state and remembers who did it and why.
func (inv *Inventory) setState(d *store.Device, st store.DeviceState, by, reason string) {
	if d.State == st && d.StateReason == reason && d.StateBy == by {
		return
	}
	d.State, d.StateBy, d.StateReason = st, by, reason
	d.StateChangedAt = inv.clock().UTC()
}

// Approve lets Ward watch a device that waits for a person. by names the operator.
func (inv *Inventory) Approve(ctx context.Context, tenant, id, by string) (store.Device,
	error) {
	d, err := inv.st.UpdateDevice(ctx, tenant, id, nil,
		func(d *store.Device, found bool, _ []store.Device) error {
			if !found {
				return store.ErrNotFound
			}
			switch d.State {
			case store.DeviceDiscovered, store.DevicePendingApproval, store.DeviceFailed:
			default:
				return fmt.Errorf("%w: device is %s", ErrState, d.State)
			}
			switch d.Strategy {
			case string(classify.StrategyAgent):
				inv.setState(d, store.DeviceApproved, by, "approved by "+by)
			case string(classify.StrategySNMP), string(classify.StrategyPassive):
				inv.setState(d, store.DeviceAgentless, by, "approved by "+by+
					"; watched without an agent ("+d.Strategy+")")
			default:
				return fmt.Errorf("%w: a %s is not watched; exclude it or leave it listed",
					ErrState, d.Type)
			}
			return nil
		})
	if err != nil {
		return store.Device{}, err
	}

	if _, err := inv.cfg.Recorder.Record(ctx, evidence.Entry{Tenant: tenant,
		Type: TypeDeviceApproved, Actor: evidence.Actor{Kind: evidence.ActorOperator, ID: by},
		Subject: id, Data: map[string]any{"type": d.Type, "state": d.State}}); err != nil {
		return store.Device{}, fmt.Errorf("record approval of %s: %w", id, err)
	}
	inv.log.Info("device approved", logkey.Tenant, tenant, logkey.Device, id,
		logkey.Operator, by, logkey.State, d.State)
	return inv.maybeBootstrap(ctx, d), nil
}

// Exclude takes a device out of monitoring and enrollment. by names the operator.
func (inv *Inventory) Exclude(ctx context.Context, tenant, id, by, reason string) (
	store.Device, error) {
	d, err := inv.st.UpdateDevice(ctx, tenant, id, nil,
		func(d *store.Device, found bool, _ []store.Device) error {
			if !found {
				return store.ErrNotFound
			}
			inv.setState(d, store.DeviceExcluded, by, reason)
			return nil
		})
	if err != nil {
		return store.Device{}, err
	}
	if _, err := inv.cfg.Recorder.Record(ctx, evidence.Entry{Tenant: tenant,
		Type: TypeDeviceExcluded, Actor: evidence.Actor{Kind: evidence.ActorOperator, ID: by},
		Subject: id, Data: map[string]any{"type": d.Type, "reason": reason}}); err != nil {
		return store.Device{}, fmt.Errorf("record exclusion of %s: %w", id, err)
	}
	inv.log.Info("device excluded", logkey.Tenant, tenant, logkey.Device, id,
		logkey.Operator, by, logkey.Reason, reason)
	return d, nil
}

// maybeBootstrap asks the Bootstrapper to install an agent on an approved device and
// records the outcome in its state. Without a Bootstrapper the device stays approved.
func (inv *Inventory) maybeBootstrap(ctx context.Context, d store.Device) store.Device {
	if d.State != store.DeviceApproved || d.Strategy != string(classify.StrategyAgent) {
		return d
	}
	if inv.cfg.Bootstrapper == nil {
		return inv.transition(ctx, d, store.DeviceApproved, d.StateBy,
			d.StateReason+"; waiting: the collector's SSH bootstrap is not available")
	}
	if len(d.Addresses) == 0 || d.Collector == "" {
		return inv.transition(ctx, d, store.DeviceFailed, controllerActor,
			"bootstrap: no address or collector known for the device")
	}
	if why := inv.notCollector(ctx, d); why != "" {
		return inv.transition(ctx, d, store.DeviceFailed, controllerActor, "bootstrap: "+why)
	}

	tokenID, token, err := inv.mintToken(ctx, d, d.Addresses[0])
	if err == nil {
		err = inv.cfg.Bootstrapper.Bootstrap(ctx, BootstrapRequest{Tenant: d.Tenant,
			Collector: d.Collector, DeviceID: d.ID, Address: d.Addresses[0],
			Hostname: d.Hostname, Type: d.Type, Tier: d.Tier, TokenID: tokenID,
			Token: token})
	}
	if err != nil {
		if ferr := inv.BootstrapFailed(ctx, d.Tenant, d.ID, "request", err.Error()); ferr != nil {
			inv.log.Error("bootstrap failure", logkey.Device, d.ID, logkey.Error, ferr)
		}
		got, gerr := inv.st.GetDevice(ctx, d.Tenant, d.ID)
		if gerr != nil {
			return d
		}
		return got
	}
	return inv.transition(ctx, d, store.DeviceEnrolling, controllerActor,
		"the collector "+d.Collector+" is installing the agent")
}

// notCollector says why the agent that reported d may not be asked to bootstrap it (it is
// gone, revoked, of another tenant or not allowed the collector role by an operator), or
// returns "" when it may. The roles are the stored ones, never what the agent claimed.
func (inv *Inventory) notCollector(ctx context.Context, d store.Device) string {
	a, err := inv.st.GetAgent(ctx, d.Collector)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "the collector " + d.Collector + " is not enrolled"
	case err != nil:
		return "look up the collector " + d.Collector + ": " + err.Error()
	case a.Revoked || a.Tenant != d.Tenant:
		return "the collector " + d.Collector + " is revoked"
	case !a.MayTake(store.AgentRoleCollector):
		return "the agent " + d.Collector + " is not allowed the collector role"
	}
	return ""
}

// transition stores a state change of d unless the device changed state meanwhile.
func (inv *Inventory) transition(ctx context.Context, d store.Device, st store.DeviceState,
	by, reason string) store.Device {
	got, err := inv.st.UpdateDevice(ctx, d.Tenant, d.ID, nil,
		func(cur *store.Device, found bool, _ []store.Device) error {
			if !found || cur.State != d.State {
				return errStale
			}
			inv.setState(cur, st, by, reason)
			return nil
		})
	if err != nil {
		if !errors.Is(err, errStale) {
			inv.log.Error("device state", logkey.Device, d.ID, logkey.State, st,
				logkey.Error, err)
		}
		return d
	}
	return got
}

var errStale = errors.New("inventory: device changed meanwhile")
