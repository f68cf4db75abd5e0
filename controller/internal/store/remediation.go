package store

import (
	"context"
	"strings"
	"time"
)

// IncidentState is where an incident stands.
type IncidentState string

// Incident states. Every state but IncidentResolved is unresolved: an agent has at most
// one unresolved incident per check.
const (
	IncidentOpen             IncidentState = "open"
	IncidentRemediating      IncidentState = "remediating"
	IncidentAwaitingApproval IncidentState = "awaiting_approval"
	IncidentEscalated        IncidentState = "escalated"
	IncidentResolved         IncidentState = "resolved"
)

// Incident kinds: what opened the incident.
const (
	IncidentKindDrift   = "drift"   // a baseline check failed
	IncidentKindOffline = "offline" // the agent stopped reporting
	// IncidentKindDeviceDown: an agentless device stopped answering its collector's polls.
	IncidentKindDeviceDown = "device_down"
)

// OfflineCheck is the Check of an incident about an agent that went offline.
const OfflineCheck = "AGENT-OFFLINE"

// DeviceDownCheck is the Check of an incident about an agentless device that stopped
// answering its polls: the prefix, then the device's inventory id. The incident's Agent
// is the collector that polls the device.
func DeviceDownCheck(device string) string { return "DEVICE-DOWN:" + device }

// ControllerCheck reports whether check names an incident the controller opens from its
// own observations (AGENT-OFFLINE, and the "DEVICE-" checks of devices: down, agent
// installation failed) rather than from an agent's drift report. An agent's check results
// never open, update or resolve those.
func ControllerCheck(check string) bool {
	return check == OfflineCheck || strings.HasPrefix(check, "DEVICE-")
}

// IncidentEvent is one step of an incident's history: a decision and who took it.
type IncidentEvent struct {
	At      time.Time     `json:"at"`
	State   IncidentState `json:"state"`   // state after the event
	Actor   string        `json:"actor"`   // operator name, or "controller"
	Action  string        `json:"action"`  // "opened", "auto_remediated", "approved", ...
	Detail  string        `json:"detail"`  // free text: reason, command id, ...
	Command string        `json:"command"` // command id, when the event concerns one
}

// Incident is a problem on one agent: a failing check, the agent being offline, or a
// remediation that failed. Incident ids are unique across tenants.
type Incident struct {
	ID         string          `json:"id"`
	Tenant     string          `json:"tenant"`
	Agent      string          `json:"agent"`
	Check      string          `json:"check"`
	Kind       string          `json:"kind"` // IncidentKind*
	State      IncidentState   `json:"state"`
	Severity   string          `json:"severity"`
	Runbook    string          `json:"runbook"`  // runbook chosen; empty when none
	Observed   string          `json:"observed"` // latest observed value (scrubbed by the agent)
	OpenedAt   time.Time       `json:"opened_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	ResolvedAt time.Time       `json:"resolved_at"` // zero while unresolved
	Attempts   int             `json:"attempts"`    // remediation commands issued
	Commands   []string        `json:"commands"`    // ids of commands issued, oldest first
	ApprovedBy string          `json:"approved_by"` // operator who approved; empty if none
	Reason     string          `json:"reason"`      // why it waits, escalated or resolved
	History    []IncidentEvent `json:"history"`
}

// IncidentFilter selects incidents. Zero fields match everything.
type IncidentFilter struct {
	Agent      string
	Check      string
	State      IncidentState
	Unresolved bool // only incidents not resolved
}

// Incidents stores incidents.
type Incidents interface {
	// OpenIncident stores inc unless the agent already has an unresolved incident for
	// inc.Check, in which case it stores nothing and returns that one with created false.
	// Atomic: two concurrent calls for one agent and check create one incident.
	// ErrNotFound when the tenant does not exist.
	OpenIncident(ctx context.Context, inc Incident) (got Incident, created bool, err error)
	// GetIncident finds an incident by id in any tenant.
	GetIncident(ctx context.Context, id string) (Incident, error)
	// UnresolvedIncident returns the agent's unresolved incident for check; ErrNotFound
	// when there is none.
	UnresolvedIncident(ctx context.Context, tenant, agent, check string) (Incident, error)
	// ListIncidents returns tenant's incidents ("" for all tenants) matching f, oldest
	// first within each tenant.
	ListIncidents(ctx context.Context, tenant string, f IncidentFilter) ([]Incident, error)
	// UpdateIncident applies fn to the stored incident in one transaction and returns the
	// result; fn may run more than once and must not change ID, Tenant, Agent or Check.
	// An error from fn is returned wrapped and nothing is written.
	UpdateIncident(ctx context.Context, id string, fn func(*Incident) error) (Incident, error)
	// CountIncidents returns how many of tenant's incidents are in state (unresolved
	// states only; IncidentResolved counts nothing).
	CountIncidents(ctx context.Context, tenant string, state IncidentState) (int, error)
}

// CommandStatus is where a command stands.
type CommandStatus string

// Command statuses. Pending and sent commands are unfinished: they are (re)sent to the
// agent whenever it connects, until a result arrives or they expire.
const (
	CommandPending   CommandStatus = "pending"
	CommandSent      CommandStatus = "sent"
	CommandSucceeded CommandStatus = "succeeded"
	CommandFailed    CommandStatus = "failed"
	CommandRefused   CommandStatus = "refused"
	CommandTimedOut  CommandStatus = "timed_out"
	CommandDryRun    CommandStatus = "dry_run"
	CommandExpired   CommandStatus = "expired"
)

// Finished reports whether s is final.
func (s CommandStatus) Finished() bool {
	return s != CommandPending && s != CommandSent
}

// Command is a signed command for one agent, stored before it is first sent. Command ids
// are unique across tenants.
type Command struct {
	ID         string        `json:"id"`
	Tenant     string        `json:"tenant"`
	Agent      string        `json:"agent"`
	Incident   string        `json:"incident"` // empty for a manual run without incident
	Runbook    string        `json:"runbook"`
	IssuedBy   string        `json:"issued_by"` // operator name, or "controller"
	IssuedAt   time.Time     `json:"issued_at"`
	ExpiresAt  time.Time     `json:"expires_at"`
	DryRun     bool          `json:"dry_run"`
	Signed     []byte        `json:"signed"` // serialized ward.v1.SignedPayload, as sent
	Status     CommandStatus `json:"status"`
	Sends      int           `json:"sends"` // times handed to a stream
	LastSentAt time.Time     `json:"last_sent_at"`
	FinishedAt time.Time     `json:"finished_at"`
	Result     []byte        `json:"result"` // serialized ward.v1.CommandResult; nil until one
	// Owner names the part of the controller that issued a command for its own purpose
	// (for example "bootstrap" for an agent installation) and gets its outcome; empty
	// for remediation's own commands.
	Owner string `json:"owner,omitempty"`
	// Subject is what an owned command is about, for its owner (for example a device id).
	Subject string `json:"subject,omitempty"`
}

// Commands stores commands.
type Commands interface {
	// CreateCommand stores c: ErrExists when its id is taken, ErrNotFound when the agent
	// does not exist in c.Tenant.
	CreateCommand(ctx context.Context, c Command) error
	// GetCommand finds a command by id in any tenant.
	GetCommand(ctx context.Context, id string) (Command, error)
	// UpdateCommand applies fn to the stored command in one transaction and returns the
	// result; fn may run more than once and must not change ID, Tenant or Agent.
	UpdateCommand(ctx context.Context, id string, fn func(*Command) error) (Command, error)
	// UnfinishedCommands returns the agent's commands that are pending or sent, oldest
	// first.
	UnfinishedCommands(ctx context.Context, tenant, agent string) ([]Command, error)
	// IssueCommand stores c as CreateCommand does and, in the same transaction, applies fn
	// to the incident c.Incident as UpdateIncident does, returning the incident. Nothing
	// is written when either fails.
	IssueCommand(ctx context.Context, c Command, fn func(*Incident) error) (Incident, error)
}

// CheckStatus is the latest known state of one check on one agent.
type CheckStatus struct {
	Tenant    string    `json:"tenant"`
	Agent     string    `json:"agent"`
	Check     string    `json:"check"`
	State     string    `json:"state"` // "pass", "fail", "error", "not_applicable"
	Observed  string    `json:"observed"`
	Message   string    `json:"message"`
	Since     time.Time `json:"since"`      // when the check entered State, per the agent
	UpdatedAt time.Time `json:"updated_at"` // when the controller last heard of it
	// Failures holds when the check turned from passing to failing, newest last, for
	// flap detection; callers trim it.
	Failures []time.Time `json:"failures"`
}

// CheckStatuses stores the latest state of each check on each agent.
type CheckStatuses interface {
	// UpdateCheckStatus applies fn to the agent's status for check (a zero CheckStatus
	// with Tenant, Agent and Check filled when none is stored) and stores the result.
	UpdateCheckStatus(ctx context.Context, tenant, agent, check string,
		fn func(*CheckStatus) error) (CheckStatus, error)
	// ListCheckStatuses returns tenant's check statuses, of one agent when agent is not
	// empty, ordered by agent then check.
	ListCheckStatuses(ctx context.Context, tenant, agent string) ([]CheckStatus, error)
}

// BaselineVersion is one published version of a tenant's baseline.
type BaselineVersion struct {
	Tenant      string    `json:"tenant"`
	BaselineID  string    `json:"baseline_id"`
	Version     string    `json:"version"`
	Document    []byte    `json:"document"` // YAML as published
	PublishedAt time.Time `json:"published_at"`
	PublishedBy string    `json:"published_by"`
}

// Exclusion is a check a tenant does not apply, with the recorded reason (an exception).
type Exclusion struct {
	Tenant    string    `json:"tenant"`
	Check     string    `json:"check"`
	Reason    string    `json:"reason"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// Baselines stores each tenant's baseline, its exclusions and the version each agent
// reports.
type Baselines interface {
	// PutBaseline makes v the tenant's current baseline. ErrNotFound when the tenant does
	// not exist.
	PutBaseline(ctx context.Context, v BaselineVersion) error
	// CurrentBaseline returns the tenant's current baseline; ErrNotFound when none was
	// published.
	CurrentBaseline(ctx context.Context, tenant string) (BaselineVersion, error)
	// PutExclusion stores (or replaces) an exclusion.
	PutExclusion(ctx context.Context, e Exclusion) error
	// DeleteExclusion removes one; ErrNotFound when there is none.
	DeleteExclusion(ctx context.Context, tenant, check string) error
	// ListExclusions returns tenant's exclusions ordered by check.
	ListExclusions(ctx context.Context, tenant string) ([]Exclusion, error)
	// SetAgentBaseline records the baseline version the agent reports it applies.
	SetAgentBaseline(ctx context.Context, tenant, agent, version string, at time.Time) error
	// AgentBaseline returns the version one agent reported, "" when it reported none.
	AgentBaseline(ctx context.Context, tenant, agent string) (string, error)
	// AgentBaselines returns the version each agent of tenant reported, by agent id.
	AgentBaselines(ctx context.Context, tenant string) (map[string]string, error)
}

// Remediation is the durable state of the remediation loop. It is kept apart from Store
// so that a store can offer it without every wrapper of Store changing; the Badger store
// implements both.
type Remediation interface {
	Incidents
	Commands
	CheckStatuses
	Baselines
}
