package store

import (
	"context"
	"time"

	"github.com/wardsec/ward/pkg/site"
)

// DeviceState is where a discovered device's monitoring and enrollment stand.
type DeviceState string

// Device states. Discovered, pending approval and agentless are set by the controller
// from the classification; the others follow an operator's act or the enrollment.
const (
	DeviceDiscovered      DeviceState = "discovered"       // nothing to do
	DevicePendingApproval DeviceState = "pending_approval" // waits for a person
	DeviceApproved        DeviceState = "approved"         // agent approved, not yet installed
	DeviceEnrolling       DeviceState = "enrolling"        // the collector installs the agent
	DeviceEnrolled        DeviceState = "enrolled"         // an agent runs on it
	DeviceAgentless       DeviceState = "agentless"        // polled over SNMP or watched passively
	DeviceExcluded        DeviceState = "excluded"         // taken out by an operator
	DeviceFailed          DeviceState = "failed"           // enrollment failed
)

// DeviceService is one open port of a device.
type DeviceService struct {
	Port     uint32 `json:"port"`
	Protocol string `json:"protocol"`
	Name     string `json:"name"`
	Product  string `json:"product"`
	Version  string `json:"version"`
	Extra    string `json:"extra"`
}

// Device is one device of a tenant's inventory: what discovery saw, merged across reports,
// its classification, and its state. ID is "mac:<mac>" when the MAC is known, else
// "ip:<address>"; unique within the tenant.
type Device struct {
	ID          string            `json:"id"`
	Tenant      string            `json:"tenant"`
	MAC         string            `json:"mac"`
	Addresses   []string          `json:"addresses"`
	Hostname    string            `json:"hostname"`
	Vendor      string            `json:"vendor"`
	OSGuess     string            `json:"os_guess"`
	Description string            `json:"description"`
	Services    []DeviceService   `json:"services"`
	Methods     []string          `json:"methods"`
	Attributes  map[string]string `json:"attributes"`
	FirstSeen   time.Time         `json:"first_seen"`
	LastSeen    time.Time         `json:"last_seen"`
	Collector   string            `json:"collector"` // agent id that reported it last

	// Classification (package pkg/classify).
	Type          string   `json:"type"`
	Tier          int      `json:"tier"`
	ShouldMonitor bool     `json:"should_monitor"`
	Strategy      string   `json:"strategy"`
	Enrollment    string   `json:"enrollment"`
	Confidence    float64  `json:"confidence"`
	Reasons       []string `json:"reasons"`
	Controls      []string `json:"controls"`
	Clinical      bool     `json:"clinical"` // clinical evidence was seen

	State          DeviceState `json:"state"`
	StateReason    string      `json:"state_reason"`
	StateBy        string      `json:"state_by"` // operator name or "controller"
	StateChangedAt time.Time   `json:"state_changed_at"`
	AgentID        string      `json:"agent_id"` // once enrolled

	// Health is what the collector's SNMP polls showed; nil before the first poll.
	Health *DeviceHealth `json:"health,omitempty"`
}

// DeviceHealth is the state of a polled agentless device, as its collector's SNMP polls
// showed it. Times are the collector's poll times.
type DeviceHealth struct {
	LastPoll  time.Time `json:"last_poll"`
	Reachable bool      `json:"reachable"`
	// Since is when the device became reachable, or unreachable, as the polls saw it.
	Since time.Time `json:"since"`
	// ConsecutiveFailures counts the polls in a row the device did not answer.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// UptimeCentis is sysUpTime (hundredths of a second) at the last answered poll.
	UptimeCentis uint64 `json:"uptime_centis"`
	// LastAnswer is when the device last answered a poll; zero when never.
	LastAnswer time.Time `json:"last_answer"`
	// LastRestart is when the device last restarted (its uptime went backwards).
	LastRestart time.Time `json:"last_restart"`
	Error       string    `json:"error"` // why the last poll got no answer
	// Incident is the id of the open device-down incident; empty when none.
	Incident   string            `json:"incident"`
	Interfaces []InterfaceHealth `json:"interfaces"`
}

// InterfaceHealth is one interface of a polled device at its last answered poll.
type InterfaceHealth struct {
	Index     uint32 `json:"index"`
	Name      string `json:"name"`
	Status    string `json:"status"` // "up", "down", ...; "" when not offered
	InErrors  uint64 `json:"in_errors"`
	OutErrors uint64 `json:"out_errors"`
	// NewErrors counts the errors (in and out) since the previous answered poll.
	NewErrors uint64 `json:"new_errors"`
}

// DeviceFilter selects devices. Zero fields match everything.
type DeviceFilter struct {
	Type  string
	Tier  int
	State DeviceState
}

// Match reports whether d passes the filter.
func (f DeviceFilter) Match(d Device) bool {
	return (f.Type == "" || d.Type == f.Type) && (f.Tier == 0 || d.Tier == f.Tier) &&
		(f.State == "" || d.State == f.State)
}

// ScanStatus is the latest progress of one collector's discovery scan.
type ScanStatus struct {
	Tenant     string    `json:"tenant"`
	Collector  string    `json:"collector"`
	ScanID     string    `json:"scan_id"`
	Subnet     string    `json:"subnet"`
	HostsDone  uint32    `json:"hosts_done"`
	HostsFound uint32    `json:"hosts_found"`
	Complete   bool      `json:"complete"`
	Error      string    `json:"error"`
	StartedAt  time.Time `json:"started_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// SiteConfig is a tenant's site configuration (what its collector scans and how, with
// the SNMP secrets the collector needs in the clear) and who set it last.
type SiteConfig struct {
	Config    site.Config `json:"config"`
	UpdatedAt time.Time   `json:"updated_at"`
	UpdatedBy string      `json:"updated_by"`
}

// Inventory stores the device inventory, scan progress, site configurations, and how far
// each collector's stored messages have been read into the inventory.
type Inventory interface {
	// UpdateDevice reads device id of tenant, lets fn change it and stores the result,
	// atomically. fn gets found false and a zero Device (ID and Tenant set) when the
	// device does not exist yet. absorb names other devices of the tenant that are the
	// same device under an older key (an address before the MAC was known): those that
	// exist are passed to fn and deleted in the same transaction. An error from fn stores
	// nothing and is returned. ErrNotFound when the tenant does not exist.
	UpdateDevice(ctx context.Context, tenant, id string, absorb []string,
		fn func(d *Device, found bool, absorbed []Device) error) (Device, error)
	// GetDevice returns one device; ErrNotFound when absent.
	GetDevice(ctx context.Context, tenant, id string) (Device, error)
	// ListDevices returns the tenant's devices that match f, ordered by id.
	ListDevices(ctx context.Context, tenant string, f DeviceFilter) ([]Device, error)
	// CountDevices returns how many devices the tenant has.
	CountDevices(ctx context.Context, tenant string) (int, error)

	// PutScan stores the latest status of a collector's scan, replacing the previous one.
	PutScan(ctx context.Context, s ScanStatus) error
	// ListScans returns the latest scan of each collector of the tenant, by collector.
	ListScans(ctx context.Context, tenant string) ([]ScanStatus, error)

	// GetSiteConfig returns the tenant's site configuration; ErrNotFound when none.
	GetSiteConfig(ctx context.Context, tenant string) (SiteConfig, error)
	// PutSiteConfig replaces the tenant's site configuration. ErrNotFound when the
	// tenant does not exist.
	PutSiteConfig(ctx context.Context, tenant string, c SiteConfig) error

	// DiscoveryCursor returns the sequence number of the agent's last stored message read
	// into the inventory; 0 when none.
	DiscoveryCursor(ctx context.Context, tenant, agent string) (uint64, error)
	// SetDiscoveryCursor records it; a lower value than the stored one is ignored.
	SetDiscoveryCursor(ctx context.Context, tenant, agent string, seq uint64) error
	// PollCursor returns the sequence number of the agent's last stored device poll
	// report applied to the devices' health; 0 when none.
	PollCursor(ctx context.Context, tenant, agent string) (uint64, error)
	// SetPollCursor records it; a lower value than the stored one is ignored.
	SetPollCursor(ctx context.Context, tenant, agent string, seq uint64) error
}
