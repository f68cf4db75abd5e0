package badger

import (
	"context"
	"fmt"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/wardsec/ward/controller/internal/store"
)

// CreateOperator stores o; store.ErrExists when the name is taken.
func (s *Store) CreateOperator(ctx context.Context, o store.Operator) error {
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		found, err := exists(txn, operatorKey(o.Name))
		if err != nil {
			return err
		}
		if found {
			return store.ErrExists
		}
		return put(txn, operatorKey(o.Name), o)
	})
	if err != nil {
		return fmt.Errorf("create operator %s: %w", o.Name, err)
	}
	return nil
}

// GetOperator returns the named operator; store.ErrNotFound when there is none.
func (s *Store) GetOperator(ctx context.Context, name string) (store.Operator, error) {
	var o store.Operator
	err := s.view(ctx, func(txn *badgerdb.Txn) error { return get(txn, operatorKey(name), &o) })
	if err != nil {
		return store.Operator{}, fmt.Errorf("get operator %s: %w", name, err)
	}
	return o, nil
}

// ListOperators returns every operator, ordered by name.
func (s *Store) ListOperators(ctx context.Context) ([]store.Operator, error) {
	var out []store.Operator
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		return each(txn, operatorsPrefix(), func(o store.Operator) error {
			out = append(out, o)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list operators: %w", err)
	}
	return out, nil
}

// UpdateOperator applies fn to the stored operator in one transaction and returns the
// result. fn may run more than once (after a conflict) and must not change Name.
func (s *Store) UpdateOperator(ctx context.Context, name string,
	fn func(*store.Operator) error) (store.Operator, error) {
	var o store.Operator
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		o = store.Operator{}
		if err := get(txn, operatorKey(name), &o); err != nil {
			return err
		}
		if err := fn(&o); err != nil {
			return err
		}
		if o.Name != name {
			return fmt.Errorf("update changed the name to %q", o.Name)
		}
		return put(txn, operatorKey(name), o)
	})
	if err != nil {
		return store.Operator{}, fmt.Errorf("update operator %s: %w", name, err)
	}
	return o, nil
}
