package escalation

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/remediation"
	"github.com/wardsec/ward/controller/internal/store"
)

// Document is the JSON body of a delivery.
type Document struct {
	DeliveryID string    `json:"delivery_id"`
	Event      string    `json:"event"` // "incident.escalated"
	SentAt     time.Time `json:"sent_at"`
	Reason     string    `json:"reason"`
	Incident   Incident  `json:"incident"`
	Host       Host      `json:"host"`
	Tried      []Tried   `json:"tried"`
	// Evidence lists references into the tenant's evidence log: the incident and each
	// command, by the subject they are recorded under.
	Evidence []Reference `json:"evidence"`
}

// Incident is the escalated incident.
type Incident struct {
	ID       string                `json:"id"`
	Tenant   string                `json:"tenant"`
	Agent    string                `json:"agent"`
	Check    string                `json:"check"`
	Kind     string                `json:"kind"`
	State    string                `json:"state"`
	Severity string                `json:"severity"`
	Runbook  string                `json:"runbook"`
	Observed string                `json:"observed"`
	OpenedAt time.Time             `json:"opened_at"`
	History  []store.IncidentEvent `json:"history"`
}

// Host is the agent's host.
type Host struct {
	Agent     string   `json:"agent"`
	Hostname  string   `json:"hostname"`
	OS        string   `json:"os"`
	OSVersion string   `json:"os_version"`
	Addresses []string `json:"addresses"`
	Tier      uint32   `json:"tier"`
	Online    bool     `json:"online"`
	LastSeen  string   `json:"last_seen"`
}

// Tried is one command issued for the incident.
type Tried struct {
	Command  string    `json:"command"`
	Runbook  string    `json:"runbook"`
	IssuedBy string    `json:"issued_by"`
	IssuedAt time.Time `json:"issued_at"`
	Status   string    `json:"status"`
}

// Reference points at a record of the evidence log.
type Reference struct {
	Tenant  string `json:"tenant"`
	Type    string `json:"type"`
	Subject string `json:"subject"`
}

func documentOf(e remediation.Escalation, now time.Time) Document {
	inc := e.Incident
	doc := Document{
		DeliveryID: newDeliveryID(), Event: "incident.escalated", SentAt: now.UTC(),
		Reason: e.Reason,
		Incident: Incident{ID: inc.ID, Tenant: inc.Tenant, Agent: inc.Agent,
			Check: inc.Check, Kind: inc.Kind, State: string(inc.State),
			Severity: inc.Severity, Runbook: inc.Runbook, Observed: inc.Observed,
			OpenedAt: inc.OpenedAt, History: inc.History},
		Host: Host{Agent: e.Agent.ID, Hostname: e.Agent.Host.Hostname, OS: e.Agent.Host.OS,
			OSVersion: e.Agent.Host.OSVersion, Addresses: e.Agent.Host.Addresses,
			Tier: e.Agent.Tier, Online: e.Agent.Online},
		Evidence: []Reference{{Tenant: inc.Tenant, Type: evidence.TypeIncidentOpened, Subject: inc.ID},
			{Tenant: inc.Tenant, Type: evidence.TypeIncidentEscalated, Subject: inc.ID}},
	}
	if !e.Agent.LastSeen.IsZero() {
		doc.Host.LastSeen = e.Agent.LastSeen.UTC().Format(time.RFC3339)
	}
	for _, c := range e.Tried {
		doc.Tried = append(doc.Tried, Tried{Command: c.ID, Runbook: c.Runbook,
			IssuedBy: c.IssuedBy, IssuedAt: c.IssuedAt, Status: string(c.Status)})
		doc.Evidence = append(doc.Evidence,
			Reference{Tenant: inc.Tenant, Type: evidence.TypeCommandIssued, Subject: c.ID})
	}
	return doc
}

func newDeliveryID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
