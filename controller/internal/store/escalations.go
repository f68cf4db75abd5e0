package store

import (
	"context"
	"time"
)

// PendingEscalation is an escalation waiting for delivery to the webhook: kept in the
// store so that a controller restart does not lose it.
type PendingEscalation struct {
	ID       string // delivery id, the same across attempts
	Tenant   string
	Incident string
	// Body is the JSON document, as built when the incident was escalated.
	Body      []byte
	Attempts  int       // made so far
	NextAt    time.Time // earliest time of the next attempt
	LastError string    // why the last attempt failed (no secrets)
	CreatedAt time.Time
}

// Escalations is the webhook delivery queue. Implementations are safe for concurrent use.
type Escalations interface {
	// PutEscalation stores e, replacing the one with its id.
	PutEscalation(ctx context.Context, e PendingEscalation) error
	// DeleteEscalation removes the escalation with id; a missing one is not an error.
	DeleteEscalation(ctx context.Context, id string) error
	// ListEscalations returns every pending escalation, in id order.
	ListEscalations(ctx context.Context) ([]PendingEscalation, error)
}
