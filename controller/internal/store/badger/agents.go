package badger

import (
	"context"
	"errors"
	"fmt"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/wardsec/ward/controller/internal/store"
)

// CreateAgent stores a. store.ErrExists when its id is taken in any tenant,
// store.ErrNotFound when its tenant does not exist.
func (s *Store) CreateAgent(ctx context.Context, a store.Agent) error {
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		if err := tenantExists(txn, a.Tenant); err != nil {
			return err
		}
		found, err := exists(txn, agentIndexKey(a.ID))
		if err != nil {
			return err
		}
		if found {
			return store.ErrExists
		}
		if err := txn.Set(agentIndexKey(a.ID), []byte(a.Tenant)); err != nil {
			return err
		}
		return put(txn, agentKey(a.Tenant, a.ID), a)
	})
	if err != nil {
		return fmt.Errorf("create agent %s: %w", a.ID, err)
	}
	return nil
}

// GetAgent returns the agent with id, in whatever tenant; store.ErrNotFound when there is
// none.
func (s *Store) GetAgent(ctx context.Context, id string) (store.Agent, error) {
	var a store.Agent
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		var err error
		a, err = getAgent(txn, id)
		return err
	})
	if err != nil {
		return store.Agent{}, fmt.Errorf("get agent %s: %w", id, err)
	}
	return a, nil
}

func getAgent(txn *badgerdb.Txn, id string) (store.Agent, error) {
	tenant, err := getString(txn, agentIndexKey(id))
	if err != nil {
		return store.Agent{}, err
	}
	var a store.Agent
	if err := get(txn, agentKey(tenant, id), &a); err != nil {
		return store.Agent{}, err
	}
	_, err = readAgentState(txn, &a)
	return a, err
}

// ListAgents returns the agents of tenant ("" for all), ordered by tenant then id.
func (s *Store) ListAgents(ctx context.Context, tenant string) ([]store.Agent, error) {
	var out []store.Agent
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		tenants, err := tenantIDs(txn, tenant)
		if err != nil {
			return err
		}
		for _, tn := range tenants {
			first := len(out)
			err := each(txn, agentsPrefix(tn), func(a store.Agent) error {
				out = append(out, a)
				return nil
			})
			if err != nil {
				return err
			}
			if err := overlayAgentStates(txn, tn, out[first:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return out, nil
}

// UpdateAgent applies fn to the stored agent in one transaction and returns the result.
// fn may run more than once (after a conflict); it must not change ID or Tenant. An error
// from fn is returned wrapped and nothing is written.
func (s *Store) UpdateAgent(ctx context.Context, id string,
	fn func(*store.Agent) error) (store.Agent, error) {
	var a store.Agent
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		var err error
		a, err = getAgent(txn, id)
		if err != nil {
			return err
		}
		tenant := a.Tenant
		if err := fn(&a); err != nil {
			return err
		}
		if a.ID != id || a.Tenant != tenant {
			return errors.New("update changed the agent's id or tenant")
		}
		if a.Revoked {
			// a revocation is final: the index entry is never removed
			if err := txn.Set(revokedIndexKey(id), []byte(tenant)); err != nil {
				return err
			}
		}
		if err := writeAgentState(txn, &a); err != nil {
			return err
		}
		return put(txn, agentKey(tenant, id), a)
	})
	if err != nil {
		return store.Agent{}, fmt.Errorf("update agent %s: %w", id, err)
	}
	return a, nil
}

// RevokedAgents implements store.Agents. It reads keys only.
func (s *Store) RevokedAgents(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		opts := badgerdb.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = []byte(revokedPrefix)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			out[string(it.Item().Key()[len(revokedPrefix):])] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list revoked agents: %w", err)
	}
	return out, nil
}
