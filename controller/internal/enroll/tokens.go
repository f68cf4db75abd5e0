package enroll

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// maxTokenRefs bounds the tokens a Server remembers; past it, it forgets them all.
const maxTokenRefs = 1024

// tokenRef is what never changes about a token: enough to name and sign an agent.
type tokenRef struct {
	id     string
	tenant string
	tier   uint32
	roles  []string // the roles its agents may take
}

// tokenRefs remembers which token a secret's hash names, so that the enrollments after
// the first with a token skip a read of the store, a read that waits for the commits
// under way. Whether the token may be used is decided each time in the enrollment's
// transaction, which checks the token afresh and that the agent names it. A refusal
// forgets the token: the next attempt reads it again, and so a token refused once costs
// no more signatures. Only secret hashes are kept, as in the store. tokenRefs is safe
// for concurrent use.
type tokenRefs struct {
	mu   sync.Mutex // guards refs
	refs map[[32]byte]tokenRef
}

// lookup returns the token that hash names: remembered, or read from st and checked
// there (store.ErrTokenRefused when it may not be used at now from src).
func (r *tokenRefs) lookup(ctx context.Context, st Store, hash [32]byte, src netip.Addr,
	now time.Time) (tokenRef, error) {
	r.mu.Lock()
	ref, ok := r.refs[hash]
	r.mu.Unlock()
	if ok {
		return ref, nil
	}

	tok, err := st.CheckToken(ctx, hash[:], src, now)
	if err != nil {
		return tokenRef{id: tok.ID}, err
	}
	ref = tokenRef{id: tok.ID, tenant: tok.Tenant, tier: tok.Tier, roles: tok.Roles}
	r.mu.Lock()
	if r.refs == nil || len(r.refs) >= maxTokenRefs {
		r.refs = map[[32]byte]tokenRef{}
	}
	r.refs[hash] = ref
	r.mu.Unlock()
	return ref, nil
}

// forget drops what is remembered of the token hash names.
func (r *tokenRefs) forget(hash [32]byte) {
	r.mu.Lock()
	delete(r.refs, hash)
	r.mu.Unlock()
}
