package badger

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/wardsec/ward/controller/internal/store"
)

// CreateToken stores t. store.ErrExists when its id or secret hash is taken,
// store.ErrNotFound when its tenant does not exist.
func (s *Store) CreateToken(ctx context.Context, t store.Token) error {
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		if err := tenantExists(txn, t.Tenant); err != nil {
			return err
		}
		for _, k := range [][]byte{tokenIndexKey(t.ID), tokenHashKey(t.Hash)} {
			found, err := exists(txn, k)
			if err != nil {
				return err
			}
			if found {
				return store.ErrExists
			}
		}
		if err := txn.Set(tokenIndexKey(t.ID), []byte(t.Tenant)); err != nil {
			return err
		}
		if err := txn.Set(tokenHashKey(t.Hash), []byte(t.ID)); err != nil {
			return err
		}
		return put(txn, tokenKey(t.Tenant, t.ID), t)
	})
	if err != nil {
		return fmt.Errorf("create token %s: %w", t.ID, err)
	}
	return nil
}

// RedeemToken takes one use of the token whose secret hashes to hash, in one transaction.
// Unknown, revoked, expired and used-up tokens, and sources outside the token's network,
// are all store.ErrTokenRefused.
func (s *Store) RedeemToken(ctx context.Context, hash []byte, source netip.Addr,
	now time.Time) (store.Token, error) {
	var t store.Token
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		var err error
		t, err = findToken(txn, hash, source, now)
		if err != nil {
			return err
		}
		t.UsesLeft--
		return put(txn, tokenKey(t.Tenant, t.ID), t)
	})
	if errors.Is(err, store.ErrTokenRefused) {
		return store.Token{}, store.ErrTokenRefused
	}
	if err != nil {
		return store.Token{}, fmt.Errorf("redeem token: %w", err)
	}
	return t, nil
}

// CheckToken implements store.Tokens: a read of the token and nothing more.
func (s *Store) CheckToken(ctx context.Context, hash []byte, source netip.Addr,
	now time.Time) (store.Token, error) {
	var t store.Token
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		var err error
		t, err = findToken(txn, hash, source, now)
		return err
	})
	if errors.Is(err, store.ErrTokenRefused) {
		return store.Token{ID: t.ID, Tenant: t.Tenant}, store.ErrTokenRefused
	}
	if err != nil {
		return store.Token{}, fmt.Errorf("check token: %w", err)
	}
	return t, nil
}

// EnrollAgent implements store.Tokens. Concurrent enrollments are committed together in
// one synced transaction (groupUpdate), in which they see each other's token uses, so
// enrollments sharing a token neither conflict nor overdraw it.
func (s *Store) EnrollAgent(ctx context.Context, hash []byte, source netip.Addr,
	now time.Time, agent func(store.Token) (store.Agent, error)) (store.Token, store.Agent,
	error) {
	var (
		t store.Token
		a store.Agent
	)
	err := s.groupUpdate(ctx, func(txn *badgerdb.Txn) error {
		var err error
		t, a, err = enrollAgent(txn, hash, source, now, agent)
		return err
	})
	if errors.Is(err, store.ErrTokenRefused) {
		return store.Token{ID: t.ID, Tenant: t.Tenant}, store.Agent{}, store.ErrTokenRefused
	}
	if err != nil {
		return store.Token{}, store.Agent{}, fmt.Errorf("enroll agent (token %s): %w", t.ID,
			err)
	}
	return t, a, nil
}

// enrollAgent checks everything, then takes one use of the token and stores the agent. It
// writes nothing unless it succeeds, as groupUpdate requires.
func enrollAgent(txn *badgerdb.Txn, hash []byte, source netip.Addr, now time.Time,
	agent func(store.Token) (store.Agent, error)) (store.Token, store.Agent, error) {
	t, err := findToken(txn, hash, source, now)
	if err != nil {
		return t, store.Agent{}, err
	}
	a, err := agent(t)
	if err != nil {
		return t, store.Agent{}, err
	}
	if a.TokenID != t.ID || a.Tenant != t.Tenant || a.Tier != t.Tier ||
		!slices.Equal(a.Roles, t.Roles) {
		return t, store.Agent{}, store.ErrTokenRefused // the agent names another token
	}
	if err := tenantExists(txn, a.Tenant); err != nil {
		return t, store.Agent{}, err
	}
	found, err := exists(txn, agentIndexKey(a.ID))
	if err != nil {
		return t, store.Agent{}, err
	}
	if found {
		return t, store.Agent{}, store.ErrExists
	}

	t.UsesLeft--
	tokVal, err := json.Marshal(t)
	if err != nil {
		return t, store.Agent{}, err
	}
	agentVal, err := json.Marshal(a)
	if err != nil {
		return t, store.Agent{}, err
	}
	// Every check is done: only writes from here on.
	if err := txn.Set(tokenKey(t.Tenant, t.ID), tokVal); err != nil {
		return t, store.Agent{}, err
	}
	if err := txn.Set(agentIndexKey(a.ID), []byte(a.Tenant)); err != nil {
		return t, store.Agent{}, err
	}
	return t, a, txn.Set(agentKey(a.Tenant, a.ID), agentVal)
}

// findToken reads the token whose secret hashes to hash and checks that it is usable at
// now from source: store.ErrTokenRefused when it is not, or when there is none.
func findToken(txn *badgerdb.Txn, hash []byte, source netip.Addr, now time.Time) (
	store.Token, error) {
	id, err := getString(txn, tokenHashKey(hash))
	if errors.Is(err, store.ErrNotFound) {
		return store.Token{}, store.ErrTokenRefused
	}
	if err != nil {
		return store.Token{}, err
	}
	tenant, err := getString(txn, tokenIndexKey(id))
	if err != nil {
		return store.Token{}, err
	}
	var t store.Token
	if err := get(txn, tokenKey(tenant, id), &t); err != nil {
		return store.Token{}, err
	}
	if !usable(t, source, now) {
		return t, store.ErrTokenRefused
	}
	return t, nil
}

// usable reports whether t may enroll one more agent from source at now.
func usable(t store.Token, source netip.Addr, now time.Time) bool {
	switch {
	case t.Revoked, t.UsesLeft == 0, !now.Before(t.ExpiresAt):
		return false
	case t.CIDR.IsValid() && !t.CIDR.Contains(source.Unmap()):
		return false
	}
	return true
}

// ListTokens returns the tokens of tenant ("" for all), newest first.
func (s *Store) ListTokens(ctx context.Context, tenant string) ([]store.Token, error) {
	var out []store.Token
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		tenants, err := tenantIDs(txn, tenant)
		if err != nil {
			return err
		}
		for _, tn := range tenants {
			err := each(txn, tokensPrefix(tn), func(t store.Token) error {
				out = append(out, t)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	slices.SortStableFunc(out, func(a, b store.Token) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// RevokeToken marks the token revoked and returns it; store.ErrNotFound for an unknown id.
// Revoking twice is not an error.
func (s *Store) RevokeToken(ctx context.Context, id string) (store.Token, error) {
	var t store.Token
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		t = store.Token{}
		tenant, err := getString(txn, tokenIndexKey(id))
		if err != nil {
			return err
		}
		if err := get(txn, tokenKey(tenant, id), &t); err != nil {
			return err
		}
		t.Revoked = true
		return put(txn, tokenKey(tenant, id), t)
	})
	if err != nil {
		return store.Token{}, fmt.Errorf("revoke token %s: %w", id, err)
	}
	return t, nil
}

// tenantIDs returns []string{tenant} when tenant is set, else every tenant id in order.
func tenantIDs(txn *badgerdb.Txn, tenant string) ([]string, error) {
	if tenant != "" {
		return []string{tenant}, nil
	}
	var ids []string
	err := each(txn, tenantsPrefix(), func(t store.Tenant) error {
		ids = append(ids, t.ID)
		return nil
	})
	return ids, err
}
