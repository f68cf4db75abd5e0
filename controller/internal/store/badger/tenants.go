package badger

import (
	"context"
	"fmt"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/wardsec/ward/controller/internal/store"
)

// CreateTenant stores t; store.ErrExists when its id is taken.
func (s *Store) CreateTenant(ctx context.Context, t store.Tenant) error {
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		found, err := exists(txn, tenantKey(t.ID))
		if err != nil {
			return err
		}
		if found {
			return store.ErrExists
		}
		return put(txn, tenantKey(t.ID), t)
	})
	if err != nil {
		return fmt.Errorf("create tenant %s: %w", t.ID, err)
	}
	return nil
}

// GetTenant returns the tenant with id; store.ErrNotFound when there is none.
func (s *Store) GetTenant(ctx context.Context, id string) (store.Tenant, error) {
	var t store.Tenant
	err := s.view(ctx, func(txn *badgerdb.Txn) error { return get(txn, tenantKey(id), &t) })
	if err != nil {
		return store.Tenant{}, fmt.Errorf("get tenant %s: %w", id, err)
	}
	return t, nil
}

// ListTenants returns every tenant, ordered by id.
func (s *Store) ListTenants(ctx context.Context) ([]store.Tenant, error) {
	var out []store.Tenant
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		return each(txn, tenantsPrefix(), func(t store.Tenant) error {
			out = append(out, t)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return out, nil
}

// tenantExists is store.ErrNotFound when the tenant does not exist.
func tenantExists(txn *badgerdb.Txn, id string) error {
	found, err := exists(txn, tenantKey(id))
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("tenant %s: %w", id, store.ErrNotFound)
	}
	return nil
}
