package badger

import (
	"context"
	"errors"
	"fmt"
	"slices"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/wardsec/ward/controller/internal/store"
)

// Keys of the remediation state (store.Remediation):
//
//	tenant:<t>:incident:<id>                    Incident
//	tenant:<t>:incopen:<agent>:<check>          id of the agent's unresolved incident
//	tenant:<t>:incstate:<state>:<id>            empty; one per unresolved incident
//	idx:incident:<id>                           tenant id of the incident
//	tenant:<t>:cmd:<id>                         Command
//	tenant:<t>:cmdopen:<agent>:<id>             empty; one per unfinished command
//	idx:command:<id>                            tenant id of the command
//	tenant:<t>:checkstatus:<agent>:<check>      CheckStatus
//	tenant:<t>:baseline                         BaselineVersion (current)
//	tenant:<t>:exclusion:<check>                Exclusion
//	tenant:<t>:agentbaseline:<agent>            version string
func incidentKey(tenant, id string) []byte { return []byte("tenant:" + tenant + ":incident:" + id) }
func incidentsPrefix(tenant string) []byte { return []byte("tenant:" + tenant + ":incident:") }
func incidentIndexKey(id string) []byte    { return []byte("idx:incident:" + id) }

func incidentOpenKey(tenant, agent, check string) []byte {
	return []byte("tenant:" + tenant + ":incopen:" + agent + ":" + check)
}

func incidentStatePrefix(tenant string, st store.IncidentState) []byte {
	return []byte("tenant:" + tenant + ":incstate:" + string(st) + ":")
}

func incidentStateKey(tenant string, st store.IncidentState, id string) []byte {
	return append(incidentStatePrefix(tenant, st), id...)
}

var _ store.Remediation = (*Store)(nil)

// OpenIncident stores inc unless the agent has an unresolved incident for inc.Check, which
// it returns instead with created false.
func (s *Store) OpenIncident(ctx context.Context, inc store.Incident) (store.Incident, bool,
	error) {
	var got store.Incident
	var created bool
	err := s.groupUpdate(ctx, func(txn *badgerdb.Txn) error {
		created = false
		if err := tenantExists(txn, inc.Tenant); err != nil {
			return err
		}
		id, err := getString(txn, incidentOpenKey(inc.Tenant, inc.Agent, inc.Check))
		if err == nil {
			return get(txn, incidentKey(inc.Tenant, id), &got)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		found, err := exists(txn, incidentIndexKey(inc.ID))
		if err != nil {
			return err
		}
		if found {
			return store.ErrExists
		}
		if err := txn.Set(incidentIndexKey(inc.ID), []byte(inc.Tenant)); err != nil {
			return err
		}
		got, created = inc, true
		return putIncident(txn, nil, inc)
	})
	if err != nil {
		return store.Incident{}, false, fmt.Errorf("open incident %s: %w", inc.ID, err)
	}
	return got, created, nil
}

// putIncident writes inc and moves its open and state index entries from old (nil for a
// new incident) to inc's state.
func putIncident(txn *badgerdb.Txn, old *store.Incident, inc store.Incident) error {
	if old != nil && old.State != store.IncidentResolved {
		if err := txn.Delete(incidentStateKey(inc.Tenant, old.State, inc.ID)); err != nil {
			return err
		}
	}
	openKey := incidentOpenKey(inc.Tenant, inc.Agent, inc.Check)
	if inc.State == store.IncidentResolved {
		if err := txn.Delete(openKey); err != nil {
			return err
		}
	} else {
		if err := txn.Set(openKey, []byte(inc.ID)); err != nil {
			return err
		}
		if err := txn.Set(incidentStateKey(inc.Tenant, inc.State, inc.ID), nil); err != nil {
			return err
		}
	}
	return put(txn, incidentKey(inc.Tenant, inc.ID), inc)
}

// GetIncident finds an incident by id in any tenant.
func (s *Store) GetIncident(ctx context.Context, id string) (store.Incident, error) {
	var inc store.Incident
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		var err error
		inc, err = getIncident(txn, id)
		return err
	})
	if err != nil {
		return store.Incident{}, fmt.Errorf("get incident %s: %w", id, err)
	}
	return inc, nil
}

func getIncident(txn *badgerdb.Txn, id string) (store.Incident, error) {
	tenant, err := getString(txn, incidentIndexKey(id))
	if err != nil {
		return store.Incident{}, err
	}
	var inc store.Incident
	err = get(txn, incidentKey(tenant, id), &inc)
	return inc, err
}

// UnresolvedIncident returns the agent's unresolved incident for check.
func (s *Store) UnresolvedIncident(ctx context.Context, tenant, agent, check string) (
	store.Incident, error) {
	var inc store.Incident
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		id, err := getString(txn, incidentOpenKey(tenant, agent, check))
		if err != nil {
			return err
		}
		return get(txn, incidentKey(tenant, id), &inc)
	})
	if err != nil {
		return store.Incident{}, fmt.Errorf("unresolved incident %s/%s: %w", agent, check, err)
	}
	return inc, nil
}

// ListIncidents returns the incidents of tenant ("" for all) that match f, ordered by
// tenant, then by opening time.
func (s *Store) ListIncidents(ctx context.Context, tenant string,
	f store.IncidentFilter) ([]store.Incident, error) {
	var out []store.Incident
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		tenants, err := tenantIDs(txn, tenant)
		if err != nil {
			return err
		}
		for _, tn := range tenants {
			start := len(out)
			match := func(inc store.Incident) error {
				if incidentMatches(inc, f) {
					out = append(out, inc)
				}
				return nil
			}
			var err error
			if f.State != "" && f.State != store.IncidentResolved {
				err = eachInState(txn, tn, f.State, match)
			} else {
				err = each(txn, incidentsPrefix(tn), match)
			}
			if err != nil {
				return err
			}
			slices.SortStableFunc(out[start:], func(a, b store.Incident) int {
				return a.OpenedAt.Compare(b.OpenedAt)
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	return out, nil
}

// eachInState passes each of tenant's incidents in state st (unresolved) to fn, through
// the state index, in id order.
func eachInState(txn *badgerdb.Txn, tenant string, st store.IncidentState,
	fn func(store.Incident) error) error {
	prefix := incidentStatePrefix(tenant, st)
	opts := badgerdb.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = false
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		id := string(it.Item().Key()[len(prefix):])
		var inc store.Incident
		if err := get(txn, incidentKey(tenant, id), &inc); err != nil {
			return fmt.Errorf("incident %s: %w", id, err)
		}
		if err := fn(inc); err != nil {
			return err
		}
	}
	return nil
}

func incidentMatches(inc store.Incident, f store.IncidentFilter) bool {
	switch {
	case f.Agent != "" && inc.Agent != f.Agent,
		f.Check != "" && inc.Check != f.Check,
		f.State != "" && inc.State != f.State,
		f.Unresolved && inc.State == store.IncidentResolved:
		return false
	}
	return true
}

// UpdateIncident applies fn to the stored incident in one transaction.
func (s *Store) UpdateIncident(ctx context.Context, id string,
	fn func(*store.Incident) error) (store.Incident, error) {
	var inc store.Incident
	err := s.groupUpdate(ctx, func(txn *badgerdb.Txn) error {
		var err error
		inc, err = updateIncident(txn, id, fn)
		return err
	})
	if err != nil {
		return store.Incident{}, fmt.Errorf("update incident %s: %w", id, err)
	}
	return inc, nil
}

// updateIncident applies fn to the stored incident id within txn and writes the result.
func updateIncident(txn *badgerdb.Txn, id string,
	fn func(*store.Incident) error) (store.Incident, error) {
	old, inc, err := changeIncident(txn, id, fn)
	if err != nil {
		return store.Incident{}, err
	}
	return inc, putIncident(txn, &old, inc)
}

// changeIncident reads incident id and returns it with fn applied and checked, writing
// nothing.
func changeIncident(txn *badgerdb.Txn, id string,
	fn func(*store.Incident) error) (old, inc store.Incident, err error) {
	old, err = getIncident(txn, id)
	if err != nil {
		return old, inc, err
	}
	inc = old
	inc.History = slices.Clone(old.History)
	inc.Commands = slices.Clone(old.Commands)
	if err := fn(&inc); err != nil {
		return old, inc, err
	}
	if inc.ID != old.ID || inc.Tenant != old.Tenant || inc.Agent != old.Agent ||
		inc.Check != old.Check {
		return old, inc, errors.New("update changed the incident's id, tenant, agent or check")
	}
	if old.State == store.IncidentResolved && inc.State != store.IncidentResolved {
		return old, inc, errors.New("a resolved incident cannot be reopened")
	}
	return old, inc, nil
}

// CountIncidents counts tenant's incidents in an unresolved state.
func (s *Store) CountIncidents(ctx context.Context, tenant string,
	st store.IncidentState) (int, error) {
	n := 0
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		prefix := incidentStatePrefix(tenant, st)
		opts := badgerdb.DefaultIteratorOptions
		opts.Prefix = prefix
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count incidents: %w", err)
	}
	return n, nil
}
