// Package store defines the controller's durable state behind interfaces, so that the
// embedded Badger implementation (package badger) and a shared Redis implementation can
// stand side by side and pass the same test suite. Every tenant-scoped object lives under
// the key prefix "tenant:<id>:" in both. No implementation may keep state in memory that a
// second controller replica would need.
package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Errors callers branch on. Implementations wrap them; test with errors.Is.
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
	// ErrTokenRefused means a token is unknown, expired, used up, revoked, or bound to a
	// network the source address is not in. Deliberately one error: the caller must not be
	// able to tell which.
	ErrTokenRefused = errors.New("store: token refused")
)

// Role is an operator's authority.
type Role string

// Operator roles.
const (
	RoleAdmin      Role = "admin"
	RoleTechnician Role = "technician"
	RoleAuditor    Role = "auditor"
)

// Tenant is one clinic.
type Tenant struct {
	ID          string    `json:"id"`
	DisplayName string    `json:"display_name"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   string    `json:"created_by"`
}

// Token is an enrollment token. Only the SHA-256 hash of its secret is ever stored.
type Token struct {
	ID        string       `json:"id"` // public id, safe to log
	Tenant    string       `json:"tenant"`
	Hash      []byte       `json:"hash"` // SHA-256 of the secret
	ExpiresAt time.Time    `json:"expires_at"`
	UsesLeft  uint32       `json:"uses_left"`
	CIDR      netip.Prefix `json:"cidr"` // zero value: any source
	Tier      uint32       `json:"tier"`
	CreatedAt time.Time    `json:"created_at"`
	CreatedBy string       `json:"created_by"`
	Revoked   bool         `json:"revoked"`
	// Roles are the agent roles its agents may take (AgentRoleHost, AgentRoleCollector).
	// Empty for tokens stored before tokens carried roles: their agents are host-only.
	Roles []string `json:"roles,omitempty"`
}

// HostFacts are what an agent reports about its host.
type HostFacts struct {
	Hostname     string   `json:"hostname"`
	OS           string   `json:"os"`
	OSVersion    string   `json:"os_version"`
	Kernel       string   `json:"kernel"`
	Arch         string   `json:"arch"`
	MachineID    string   `json:"machine_id"`
	Addresses    []string `json:"addresses"`
	AgentVersion string   `json:"agent_version"`
	Roles        []string `json:"roles"`
}

// Agent is an enrolled agent. Agent ids are unique across tenants.
type Agent struct {
	ID           string    `json:"id"`
	Tenant       string    `json:"tenant"`
	Host         HostFacts `json:"host"`
	TokenID      string    `json:"token_id"`
	Tier         uint32    `json:"tier"`
	EnrolledAt   time.Time `json:"enrolled_at"`
	CertSerial   string    `json:"cert_serial"` // hex, newest certificate
	CertExpires  time.Time `json:"cert_expires"`
	LastSeen     time.Time `json:"last_seen"` // zero until the first message
	Online       bool      `json:"online"`
	AckedSeq     uint64    `json:"acked_seq"` // highest sequence number durably stored
	Revoked      bool      `json:"revoked"`
	RevokedAt    time.Time `json:"revoked_at"`
	RevokeReason string    `json:"revoke_reason"`
	// Roles are the roles an operator allowed the agent: its token's at enrollment, or
	// set later. Host.Roles is only what the agent claimed. Empty for agents enrolled
	// before roles were stored; AllowedRoles treats them as host-only.
	Roles []string `json:"roles,omitempty"`
}

// Agent roles: what an agent may do for its tenant. Every agent reports on its own host;
// a collector also scans the clinic's network, polls its agentless devices, receives the
// site configuration (with SNMP secrets), bootstraps agents over SSH and witnesses the
// tenant's evidence checkpoints.
const (
	AgentRoleHost      = "host"
	AgentRoleCollector = "collector"
)

// AgentRoles lists every agent role, in the order they are shown.
var AgentRoles = []string{AgentRoleHost, AgentRoleCollector}

// AllowedRoles returns the roles the agent may take: Roles, or host only when none are
// stored. The result must not be modified.
func (a Agent) AllowedRoles() []string {
	if len(a.Roles) == 0 {
		return hostOnly
	}
	return a.Roles
}

// MayTake reports whether the agent may take role.
func (a Agent) MayTake(role string) bool { return slices.Contains(a.AllowedRoles(), role) }

var hostOnly = []string{AgentRoleHost}

// NormalizeAgentRoles checks roles against AgentRoles and returns them without
// duplicates, in AgentRoles order, always with AgentRoleHost (every agent reports on its
// host). An unknown role is an error naming it.
func NormalizeAgentRoles(roles []string) ([]string, error) {
	for _, r := range roles {
		if !slices.Contains(AgentRoles, r) {
			return nil, fmt.Errorf("unknown agent role %q (known: %s)", r,
				strings.Join(AgentRoles, ", "))
		}
	}
	out := []string{AgentRoleHost}
	for _, r := range AgentRoles[1:] {
		if slices.Contains(roles, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Operator is a person or automation holding an operator certificate.
type Operator struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Tenants   []string  `json:"tenants"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	Revoked   bool      `json:"revoked"`
}

// Message is one sequenced agent message, stored as received.
type Message struct {
	Tenant     string    `json:"tenant"`
	Agent      string    `json:"agent"`
	Seq        uint64    `json:"seq"`
	Type       string    `json:"type"` // "heartbeat", "drift_report", ...
	CreatedAt  time.Time `json:"created_at"`
	ReceivedAt time.Time `json:"received_at"`
	Body       []byte    `json:"body"` // the serialized ward.v1.ConnectRequest
}

// Tenants stores tenants.
type Tenants interface {
	CreateTenant(ctx context.Context, t Tenant) error // ErrExists
	GetTenant(ctx context.Context, id string) (Tenant, error)
	ListTenants(ctx context.Context) ([]Tenant, error) // ordered by id
}

// Tokens stores enrollment tokens.
type Tokens interface {
	// CreateToken stores t: ErrExists when its id or hash is taken, ErrNotFound when its
	// tenant does not exist.
	CreateToken(ctx context.Context, t Token) error
	// RedeemToken atomically finds the token whose secret hashes to hash, checks that it is
	// usable at now from source, and takes one use. Any reason to refuse is ErrTokenRefused.
	RedeemToken(ctx context.Context, hash []byte, source netip.Addr, now time.Time) (Token, error)
	// CheckToken finds the token whose secret hashes to hash and checks that it is usable
	// at now from source, changing nothing. Any reason to refuse is ErrTokenRefused, with
	// the token's ID and Tenant set when a token matched (for the log). A later
	// enrollment may still be refused, should the token be used up or revoked meanwhile.
	CheckToken(ctx context.Context, hash []byte, source netip.Addr, now time.Time) (
		Token, error)
	// EnrollAgent atomically does what RedeemToken and CreateAgent do together: it finds
	// and checks the token as RedeemToken does, calls agent with it for the agent to store
	// (agent signs its certificate), checks that the agent names the token (TokenID,
	// Tenant and Tier), takes one use and stores the agent. It returns the token and the
	// agent once the write is on disk. All of it is stored or none: a refused token or an
	// agent that names another (ErrTokenRefused, with the token's ID and Tenant set when a
	// token matched, for the log), an error of agent, a taken agent id (ErrExists) or a
	// missing tenant (ErrNotFound) change nothing. agent may be called more than once, and is not called
	// for a refused token.
	EnrollAgent(ctx context.Context, hash []byte, source netip.Addr, now time.Time,
		agent func(Token) (Agent, error)) (Token, Agent, error)
	ListTokens(ctx context.Context, tenant string) ([]Token, error) // "" means all; newest first
	RevokeToken(ctx context.Context, id string) (Token, error)
}

// Agents stores enrolled agents.
type Agents interface {
	// CreateAgent stores a: ErrExists when its id is taken in any tenant, ErrNotFound when
	// its tenant does not exist.
	CreateAgent(ctx context.Context, a Agent) error
	// GetAgent finds an agent by id in any tenant.
	GetAgent(ctx context.Context, id string) (Agent, error)
	ListAgents(ctx context.Context, tenant string) ([]Agent, error) // "" means all
	// UpdateAgent applies fn to the stored agent in one transaction and returns the result.
	// fn must not change ID or Tenant.
	UpdateAgent(ctx context.Context, id string, fn func(*Agent) error) (Agent, error)
	// RevokedAgents returns the ids of every revoked agent, read from an index that
	// UpdateAgent keeps, so that it costs the number of revocations, not of agents.
	RevokedAgents(ctx context.Context) (map[string]bool, error)
}

// Messages stores sequenced agent messages.
type Messages interface {
	// CommitMessage durably stores m and, in the same transaction, raises the agent's AckedSeq
	// to m.Seq and sets LastSeen and Online. When m.Seq is not above AckedSeq it stores
	// nothing and reports duplicate. It returns only once the write is on disk. ErrNotFound
	// when the agent does not exist in m.Tenant.
	CommitMessage(ctx context.Context, m Message) (duplicate bool, err error)
	// CommitMessages is CommitMessage for several messages of one agent, in the order
	// given, in one transaction: one write to disk for all of them. duplicates[i] reports
	// whether ms[i] was a duplicate (its Seq not above the agent's AckedSeq when its turn
	// came). Messages of different agents or tenants in one call are an error, and so is
	// an empty ms.
	CommitMessages(ctx context.Context, ms []Message) (duplicates []bool, err error)
	// ListMessages returns up to limit messages of one agent with Seq > after, in order;
	// limit <= 0 means no limit.
	ListMessages(ctx context.Context, tenant, agent string, after uint64, limit int) ([]Message, error)
}

// Operators stores operators.
type Operators interface {
	CreateOperator(ctx context.Context, o Operator) error // ErrExists
	GetOperator(ctx context.Context, name string) (Operator, error)
	ListOperators(ctx context.Context) ([]Operator, error) // ordered by name
	UpdateOperator(ctx context.Context, name string, fn func(*Operator) error) (Operator, error)
}

// Store is the controller's whole durable state. Implementations are safe for concurrent use.
type Store interface {
	Tenants
	Tokens
	Agents
	Messages
	Operators
	// Ping reports whether the store can serve requests (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}
