package badger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/wardsec/ward/controller/internal/store"
)

func checkStatusPrefix(tenant, agent string) []byte {
	return []byte("tenant:" + tenant + ":checkstatus:" + agent)
}

func checkStatusKey(tenant, agent, check string) []byte {
	return append(checkStatusPrefix(tenant, agent), ":"+check...)
}

func baselineKey(tenant string) []byte { return []byte("tenant:" + tenant + ":baseline") }

func exclusionsPrefix(tenant string) []byte {
	return []byte("tenant:" + tenant + ":exclusion:")
}

func exclusionKey(tenant, check string) []byte {
	return append(exclusionsPrefix(tenant), check...)
}

func agentBaselinePrefix(tenant string) []byte {
	return []byte("tenant:" + tenant + ":agentbaseline:")
}

// UpdateCheckStatus applies fn to the agent's status for check and stores the result.
func (s *Store) UpdateCheckStatus(ctx context.Context, tenant, agent, check string,
	fn func(*store.CheckStatus) error) (store.CheckStatus, error) {
	var cs store.CheckStatus
	key := checkStatusKey(tenant, agent, check)
	err := s.groupUpdate(ctx, func(txn *badgerdb.Txn) error {
		cs = store.CheckStatus{}
		err := get(txn, key, &cs)
		if errors.Is(err, store.ErrNotFound) {
			cs = store.CheckStatus{Tenant: tenant, Agent: agent, Check: check}
		} else if err != nil {
			return err
		}
		if err := fn(&cs); err != nil {
			return err
		}
		cs.Tenant, cs.Agent, cs.Check = tenant, agent, check
		return put(txn, key, cs)
	})
	if err != nil {
		return store.CheckStatus{}, fmt.Errorf("update check %s/%s: %w", agent, check, err)
	}
	return cs, nil
}

// ListCheckStatuses returns tenant's check statuses (of one agent when agent is set).
func (s *Store) ListCheckStatuses(ctx context.Context, tenant, agent string) (
	[]store.CheckStatus, error) {
	var out []store.CheckStatus
	prefix := []byte("tenant:" + tenant + ":checkstatus:")
	if agent != "" {
		prefix = append(checkStatusPrefix(tenant, agent), ':')
	}
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		return each(txn, prefix, func(cs store.CheckStatus) error {
			out = append(out, cs)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list checks: %w", err)
	}
	return out, nil
}

// PutBaseline makes v the tenant's current baseline.
func (s *Store) PutBaseline(ctx context.Context, v store.BaselineVersion) error {
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		if err := tenantExists(txn, v.Tenant); err != nil {
			return err
		}
		return put(txn, baselineKey(v.Tenant), v)
	})
	if err != nil {
		return fmt.Errorf("put baseline of %s: %w", v.Tenant, err)
	}
	return nil
}

// CurrentBaseline returns the tenant's current baseline.
func (s *Store) CurrentBaseline(ctx context.Context, tenant string) (store.BaselineVersion,
	error) {
	var v store.BaselineVersion
	err := s.view(ctx, func(txn *badgerdb.Txn) error { return get(txn, baselineKey(tenant), &v) })
	if err != nil {
		return store.BaselineVersion{}, fmt.Errorf("baseline of %s: %w", tenant, err)
	}
	return v, nil
}

// PutExclusion stores or replaces an exclusion.
func (s *Store) PutExclusion(ctx context.Context, e store.Exclusion) error {
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		if err := tenantExists(txn, e.Tenant); err != nil {
			return err
		}
		return put(txn, exclusionKey(e.Tenant, e.Check), e)
	})
	if err != nil {
		return fmt.Errorf("put exclusion %s: %w", e.Check, err)
	}
	return nil
}

// DeleteExclusion removes an exclusion.
func (s *Store) DeleteExclusion(ctx context.Context, tenant, check string) error {
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		found, err := exists(txn, exclusionKey(tenant, check))
		if err != nil {
			return err
		}
		if !found {
			return store.ErrNotFound
		}
		return txn.Delete(exclusionKey(tenant, check))
	})
	if err != nil {
		return fmt.Errorf("delete exclusion %s: %w", check, err)
	}
	return nil
}

// ListExclusions returns tenant's exclusions ordered by check.
func (s *Store) ListExclusions(ctx context.Context, tenant string) ([]store.Exclusion, error) {
	var out []store.Exclusion
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		return each(txn, exclusionsPrefix(tenant), func(e store.Exclusion) error {
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list exclusions: %w", err)
	}
	return out, nil
}

// agentBaseline is the stored record of the version an agent applies.
type agentBaseline struct {
	Version string    `json:"version"`
	At      time.Time `json:"at"`
}

// SetAgentBaseline records the version the agent reports.
func (s *Store) SetAgentBaseline(ctx context.Context, tenant, agent, version string,
	at time.Time) error {
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		return put(txn, append(agentBaselinePrefix(tenant), agent...),
			agentBaseline{Version: version, At: at})
	})
	if err != nil {
		return fmt.Errorf("set baseline of agent %s: %w", agent, err)
	}
	return nil
}

// AgentBaseline returns the version one agent reported, "" when it reported none.
func (s *Store) AgentBaseline(ctx context.Context, tenant, agent string) (string, error) {
	var ab agentBaseline
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		return get(txn, append(agentBaselinePrefix(tenant), agent...), &ab)
	})
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("baseline of agent %s: %w", agent, err)
	}
	return ab.Version, nil
}

// AgentBaselines returns the version each agent of tenant reported.
func (s *Store) AgentBaselines(ctx context.Context, tenant string) (map[string]string, error) {
	out := make(map[string]string)
	prefix := agentBaselinePrefix(tenant)
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		opts := badgerdb.DefaultIteratorOptions
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
			var ab agentBaseline
			err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &ab) })
			if err != nil {
				return err
			}
			out[string(it.Item().Key()[len(prefix):])] = ab.Version
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("agent baselines of %s: %w", tenant, err)
	}
	return out, nil
}
