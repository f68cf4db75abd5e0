package badger

import (
	"context"
	"errors"
	"fmt"
	"slices"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/wardsec/ward/controller/internal/store"
)

func commandKey(tenant, id string) []byte { return []byte("tenant:" + tenant + ":cmd:" + id) }
func commandIndexKey(id string) []byte    { return []byte("idx:command:" + id) }

func commandOpenPrefix(tenant, agent string) []byte {
	return []byte("tenant:" + tenant + ":cmdopen:" + agent + ":")
}

func commandOpenKey(tenant, agent, id string) []byte {
	return append(commandOpenPrefix(tenant, agent), id...)
}

// CreateCommand stores c.
func (s *Store) CreateCommand(ctx context.Context, c store.Command) error {
	err := s.groupUpdate(ctx, func(txn *badgerdb.Txn) error { return createCommand(txn, c) })
	if err != nil {
		return fmt.Errorf("create command %s: %w", c.ID, err)
	}
	return nil
}

func createCommand(txn *badgerdb.Txn, c store.Command) error {
	if err := checkNewCommand(txn, c); err != nil {
		return err
	}
	return writeNewCommand(txn, c)
}

// checkNewCommand checks that c's agent exists and its id is free; it writes nothing.
func checkNewCommand(txn *badgerdb.Txn, c store.Command) error {
	var a store.Agent
	if err := get(txn, agentKey(c.Tenant, c.Agent), &a); err != nil {
		return err
	}
	found, err := exists(txn, commandIndexKey(c.ID))
	if err != nil {
		return err
	}
	if found {
		return store.ErrExists
	}
	return nil
}

func writeNewCommand(txn *badgerdb.Txn, c store.Command) error {
	if err := txn.Set(commandIndexKey(c.ID), []byte(c.Tenant)); err != nil {
		return err
	}
	return putCommand(txn, c)
}

// IssueCommand stores c and updates its incident in one transaction.
func (s *Store) IssueCommand(ctx context.Context, c store.Command,
	fn func(*store.Incident) error) (store.Incident, error) {
	var inc store.Incident
	err := s.groupUpdate(ctx, func(txn *badgerdb.Txn) error {
		if err := checkNewCommand(txn, c); err != nil {
			return err
		}
		old, next, err := changeIncident(txn, c.Incident, fn)
		if err != nil {
			return err
		}
		if err := writeNewCommand(txn, c); err != nil {
			return err
		}
		inc = next
		return putIncident(txn, &old, next)
	})
	if err != nil {
		return store.Incident{}, fmt.Errorf("issue command %s: %w", c.ID, err)
	}
	return inc, nil
}

// putCommand writes c and keeps its unfinished index entry in step with its status.
func putCommand(txn *badgerdb.Txn, c store.Command) error {
	openKey := commandOpenKey(c.Tenant, c.Agent, c.ID)
	var err error
	if c.Status.Finished() {
		err = txn.Delete(openKey)
	} else {
		err = txn.Set(openKey, nil)
	}
	if err != nil {
		return err
	}
	return put(txn, commandKey(c.Tenant, c.ID), c)
}

// GetCommand finds a command by id in any tenant.
func (s *Store) GetCommand(ctx context.Context, id string) (store.Command, error) {
	var c store.Command
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		var err error
		c, err = getCommand(txn, id)
		return err
	})
	if err != nil {
		return store.Command{}, fmt.Errorf("get command %s: %w", id, err)
	}
	return c, nil
}

func getCommand(txn *badgerdb.Txn, id string) (store.Command, error) {
	tenant, err := getString(txn, commandIndexKey(id))
	if err != nil {
		return store.Command{}, err
	}
	var c store.Command
	err = get(txn, commandKey(tenant, id), &c)
	return c, err
}

// UpdateCommand applies fn to the stored command in one transaction.
func (s *Store) UpdateCommand(ctx context.Context, id string,
	fn func(*store.Command) error) (store.Command, error) {
	var c store.Command
	err := s.groupUpdate(ctx, func(txn *badgerdb.Txn) error {
		old, err := getCommand(txn, id)
		if err != nil {
			return err
		}
		c = old
		if err := fn(&c); err != nil {
			return err
		}
		if c.ID != old.ID || c.Tenant != old.Tenant || c.Agent != old.Agent {
			return errors.New("update changed the command's id, tenant or agent")
		}
		return putCommand(txn, c)
	})
	if err != nil {
		return store.Command{}, fmt.Errorf("update command %s: %w", id, err)
	}
	return c, nil
}

// UnfinishedCommands returns the agent's pending and sent commands, oldest first.
func (s *Store) UnfinishedCommands(ctx context.Context, tenant, agent string) (
	[]store.Command, error) {
	var out []store.Command
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		prefix := commandOpenPrefix(tenant, agent)
		opts := badgerdb.DefaultIteratorOptions
		opts.Prefix = prefix
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
			id := string(it.Item().Key()[len(prefix):])
			var c store.Command
			if err := get(txn, commandKey(tenant, id), &c); err != nil {
				return fmt.Errorf("command %s: %w", id, err)
			}
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("unfinished commands of %s: %w", agent, err)
	}
	slices.SortStableFunc(out, func(a, b store.Command) int {
		return a.IssuedAt.Compare(b.IssuedAt)
	})
	return out, nil
}
