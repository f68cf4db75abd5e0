package badger

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

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
	dup, err := s.CommitMessages(ctx, []store.Message{m})
	if err != nil {
		return false, err
	}
	return dup[0], nil
}

// CommitMessages stores the messages of one agent that are new, in order, and updates the
// agent's delivery state (agentstate.go) once for all of them, in one transaction shared
// with concurrent callers (see groupUpdate). A message whose Seq is not above the AckedSeq reached so far (by
// earlier commits or earlier messages of ms) is a duplicate: not stored, reported true.
func (s *Store) CommitMessages(ctx context.Context, ms []store.Message) ([]bool, error) {
	if len(ms) == 0 {
		return nil, errors.New("commit messages: none given")
	}
	first := ms[0]
	vals := make([][]byte, len(ms))
	for i, m := range ms {
		if m.Tenant != first.Tenant || m.Agent != first.Agent {
			return nil, fmt.Errorf("commit messages: %s/%s and %s/%s in one call",
				first.Tenant, first.Agent, m.Tenant, m.Agent)
		}
		val, err := encodeMessage(m)
		if err != nil {
			return nil, fmt.Errorf("commit message %s/%d: %w", m.Agent, m.Seq, err)
		}
		vals[i] = val
	}

	dups := make([]bool, len(ms))
	err := s.groupUpdate(ctx, func(txn *badgerdb.Txn) error {
		// the delivery state record alone is read and written (see agentstate.go);
		// the agent record only for an agent's first batch, which has none yet
		a := store.Agent{ID: first.Agent, Tenant: first.Tenant}
		found, err := readAgentState(txn, &a)
		if err != nil {
			return err
		}
		if !found {
			if err := get(txn, agentKey(first.Tenant, first.Agent), &a); err != nil {
				return err
			}
		}
		fresh := false
		for i, m := range ms {
			dups[i] = m.Seq <= a.AckedSeq
			if dups[i] {
				continue
			}
			e := badgerdb.NewEntry(messageKey(m.Tenant, m.Agent, m.Seq), vals[i])
			if m.Type == HeartbeatType && s.heartbeatTTL > 0 {
				e = e.WithTTL(s.heartbeatTTL)
			}
			if err := txn.SetEntry(e); err != nil {
				return err
			}
			a.AckedSeq = m.Seq
			if m.ReceivedAt.After(a.LastSeen) {
				a.LastSeen = m.ReceivedAt
			}
			fresh = true
		}
		if !fresh {
			return errDuplicate
		}
		a.Online = true
		return writeAgentState(txn, &a)
	})
	if errors.Is(err, errDuplicate) {
		return dups, nil
	}
	if err != nil {
		return nil, fmt.Errorf("commit messages %s/%d..%d: %w", first.Agent, first.Seq,
			ms[len(ms)-1].Seq, err)
	}
	return dups, nil
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
			key := it.Item().Key()
			seq, err := strconv.ParseUint(string(key[len(prefix):]), 10, 64)
			if err != nil {
				return fmt.Errorf("message key %s: %w", key, err)
			}
			var m store.Message
			err = it.Item().Value(func(v []byte) error {
				m, err = decodeMessage(v, tenant, agent, seq)
				return err
			})
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
