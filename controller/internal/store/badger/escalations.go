package badger

import (
	"context"
	"fmt"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/wardsec/ward/controller/internal/store"
)

var _ store.Escalations = (*Store)(nil)

func escalationKey(id string) []byte { return []byte("escalation:" + id) }
func escalationsPrefix() []byte      { return []byte("escalation:") }

// PutEscalation stores e, replacing the one with its id (synced).
func (s *Store) PutEscalation(ctx context.Context, e store.PendingEscalation) error {
	if e.ID == "" {
		return fmt.Errorf("put escalation: no id")
	}
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		return put(txn, escalationKey(e.ID), e)
	})
	if err != nil {
		return fmt.Errorf("put escalation %s: %w", e.ID, err)
	}
	return nil
}

// DeleteEscalation removes the escalation with id; a missing one is not an error.
func (s *Store) DeleteEscalation(ctx context.Context, id string) error {
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		return txn.Delete(escalationKey(id))
	})
	if err != nil {
		return fmt.Errorf("delete escalation %s: %w", id, err)
	}
	return nil
}

// ListEscalations returns every pending escalation, in id order.
func (s *Store) ListEscalations(ctx context.Context) ([]store.PendingEscalation, error) {
	var out []store.PendingEscalation
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		return each(txn, escalationsPrefix(), func(e store.PendingEscalation) error {
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list escalations: %w", err)
	}
	return out, nil
}
