package badger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/wardsec/ward/controller/internal/store"
)

// errDuplicate aborts a CommitMessage transaction without writing.
var errDuplicate = errors.New("duplicate message")

// HeartbeatType is the Message.Type whose messages expire after Options.HeartbeatTTL.
const HeartbeatType = "heartbeat"

// CommitMessage stores m and raises its agent's AckedSeq to m.Seq, sets LastSeen to
// m.ReceivedAt and Online, all in one transaction that is on disk when it returns. A
// message with m.Seq <= AckedSeq writes nothing and reports duplicate. Concurrent calls,
// even for one agent, are safe: they share grouped transactions (one sync for many
// messages, see groupUpdate), in which a later message of an agent sees the earlier one's
// AckedSeq. store.ErrNotFound when the agent does not exist in m.Tenant.
func (s *Store) CommitMessage(ctx context.Context, m store.Message) (bool, error) {
	val, err := json.Marshal(m)
	if err != nil {
		return false, fmt.Errorf("commit message: %w", err)
	}
	err = s.groupUpdate(ctx, func(txn *badgerdb.Txn) error {
		var a store.Agent
		if err := get(txn, agentKey(m.Tenant, m.Agent), &a); err != nil {
			return err
		}
		if m.Seq <= a.AckedSeq {
			return errDuplicate
		}

		e := badgerdb.NewEntry(messageKey(m.Tenant, m.Agent, m.Seq), val)
		if m.Type == HeartbeatType && s.heartbeatTTL > 0 {
			e = e.WithTTL(s.heartbeatTTL)
		}
		if err := txn.SetEntry(e); err != nil {
			return err
		}
		a.AckedSeq = m.Seq
		a.Online = true
		if m.ReceivedAt.After(a.LastSeen) {
			a.LastSeen = m.ReceivedAt
		}
		return put(txn, agentKey(m.Tenant, m.Agent), a)
	})
	if errors.Is(err, errDuplicate) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("commit message %s/%d: %w", m.Agent, m.Seq, err)
	}
	return false, nil
}

// ListMessages returns up to limit messages of the agent with Seq > after, in sequence
// order. A limit of zero or less means no limit. Expired heartbeats are not returned.
func (s *Store) ListMessages(ctx context.Context, tenant, agent string, after uint64,
	limit int) ([]store.Message, error) {
	var out []store.Message
	if after == math.MaxUint64 {
		return nil, nil
	}
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		prefix := messagesPrefix(tenant, agent)
		opts := badgerdb.DefaultIteratorOptions
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()

		for it.Seek(messageKey(tenant, agent, after+1)); it.ValidForPrefix(prefix); it.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			var m store.Message
			err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &m) })
			if err != nil {
				return fmt.Errorf("decode %s: %w", it.Item().Key(), err)
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list messages %s: %w", agent, err)
	}
	return out, nil
}
