package metrics

import (
	"context"
	"net/netip"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
)

// InstrumentStore returns a store.Store that forwards every call to st and records its
// latency in m (ward_store_latency_seconds, labelled by method name). Close is forwarded and
// not timed. The result is as safe for concurrent use as st is; a nil m returns st itself.
func InstrumentStore(st store.Store, m *Metrics) store.Store {
	if m == nil {
		return st
	}
	return &timedStore{st: st, m: m}
}

// timedStore times each call of the store it wraps.
type timedStore struct {
	st store.Store
	m  *Metrics
}

var _ store.Store = (*timedStore)(nil)

// since records the time since start under op; use as `defer s.since("op", time.Now())`.
func (s *timedStore) since(op string, start time.Time) {
	s.m.ObserveStore(op, time.Since(start))
}

func (s *timedStore) CreateTenant(ctx context.Context, t store.Tenant) error {
	defer s.since("create_tenant", time.Now())
	return s.st.CreateTenant(ctx, t)
}

func (s *timedStore) GetTenant(ctx context.Context, id string) (store.Tenant, error) {
	defer s.since("get_tenant", time.Now())
	return s.st.GetTenant(ctx, id)
}

func (s *timedStore) ListTenants(ctx context.Context) ([]store.Tenant, error) {
	defer s.since("list_tenants", time.Now())
	return s.st.ListTenants(ctx)
}

func (s *timedStore) CreateToken(ctx context.Context, t store.Token) error {
	defer s.since("create_token", time.Now())
	return s.st.CreateToken(ctx, t)
}

func (s *timedStore) RedeemToken(ctx context.Context, hash []byte, source netip.Addr,
	now time.Time) (store.Token, error) {
	defer s.since("redeem_token", time.Now())
	return s.st.RedeemToken(ctx, hash, source, now)
}

func (s *timedStore) CheckToken(ctx context.Context, hash []byte, source netip.Addr,
	now time.Time) (store.Token, error) {
	defer s.since("check_token", time.Now())
	return s.st.CheckToken(ctx, hash, source, now)
}

func (s *timedStore) EnrollAgent(ctx context.Context, hash []byte, source netip.Addr,
	now time.Time, agent func(store.Token) (store.Agent, error)) (store.Token, store.Agent,
	error) {
	defer s.since("enroll_agent", time.Now())
	return s.st.EnrollAgent(ctx, hash, source, now, agent)
}

func (s *timedStore) ListTokens(ctx context.Context, tenant string) ([]store.Token, error) {
	defer s.since("list_tokens", time.Now())
	return s.st.ListTokens(ctx, tenant)
}

func (s *timedStore) RevokeToken(ctx context.Context, id string) (store.Token, error) {
	defer s.since("revoke_token", time.Now())
	return s.st.RevokeToken(ctx, id)
}

func (s *timedStore) CreateAgent(ctx context.Context, a store.Agent) error {
	defer s.since("create_agent", time.Now())
	return s.st.CreateAgent(ctx, a)
}

func (s *timedStore) GetAgent(ctx context.Context, id string) (store.Agent, error) {
	defer s.since("get_agent", time.Now())
	return s.st.GetAgent(ctx, id)
}

func (s *timedStore) ListAgents(ctx context.Context, tenant string) ([]store.Agent, error) {
	defer s.since("list_agents", time.Now())
	return s.st.ListAgents(ctx, tenant)
}

func (s *timedStore) RevokedAgents(ctx context.Context) (map[string]bool, error) {
	defer s.since("revoked_agents", time.Now())
	return s.st.RevokedAgents(ctx)
}

func (s *timedStore) UpdateAgent(ctx context.Context, id string,
	fn func(*store.Agent) error) (store.Agent, error) {
	defer s.since("update_agent", time.Now())
	return s.st.UpdateAgent(ctx, id, fn)
}

func (s *timedStore) CommitMessage(ctx context.Context, msg store.Message) (bool, error) {
	defer s.since("commit_message", time.Now())
	return s.st.CommitMessage(ctx, msg)
}

func (s *timedStore) CommitMessages(ctx context.Context, ms []store.Message) ([]bool, error) {
	defer s.since("commit_messages", time.Now())
	return s.st.CommitMessages(ctx, ms)
}

func (s *timedStore) ListMessages(ctx context.Context, tenant, agent string, after uint64,
	limit int) ([]store.Message, error) {
	defer s.since("list_messages", time.Now())
	return s.st.ListMessages(ctx, tenant, agent, after, limit)
}

func (s *timedStore) CreateOperator(ctx context.Context, o store.Operator) error {
	defer s.since("create_operator", time.Now())
	return s.st.CreateOperator(ctx, o)
}

func (s *timedStore) GetOperator(ctx context.Context, name string) (store.Operator, error) {
	defer s.since("get_operator", time.Now())
	return s.st.GetOperator(ctx, name)
}

func (s *timedStore) ListOperators(ctx context.Context) ([]store.Operator, error) {
	defer s.since("list_operators", time.Now())
	return s.st.ListOperators(ctx)
}

func (s *timedStore) UpdateOperator(ctx context.Context, name string,
	fn func(*store.Operator) error) (store.Operator, error) {
	defer s.since("update_operator", time.Now())
	return s.st.UpdateOperator(ctx, name, fn)
}

func (s *timedStore) Ping(ctx context.Context) error {
	defer s.since("ping", time.Now())
	return s.st.Ping(ctx)
}

func (s *timedStore) Close() error { return s.st.Close() }
