package badger

import (
	"encoding/binary"
	"errors"
	"fmt"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/wardsec/ward/controller/internal/store"
)

// An agent's delivery state is the three fields of store.Agent that every committed batch
// of its messages changes: AckedSeq, LastSeen and Online. It has a record of its own, 17
// bytes in binary (agentStateKey), so that a batch rewrites that instead of decoding and
// encoding the agent's whole JSON record (about 1 KiB): at tens of thousands of messages
// a second, those bytes were most of what the store wrote. When the state record exists it
// overrides the three fields of the agent record; UpdateAgent writes both.

func agentStateKey(tenant, id string) []byte {
	return []byte("tenant:" + tenant + ":agentstate:" + id)
}

func agentStatesPrefix(tenant string) []byte {
	return []byte("tenant:" + tenant + ":agentstate:")
}

// agentStateSize is the length of an encoded state: the sequence number, LastSeen in
// nanoseconds since the Unix epoch (0 for never), and Online as one byte.
const agentStateSize = 17

func encodeAgentState(a *store.Agent) []byte {
	b := make([]byte, agentStateSize)
	binary.BigEndian.PutUint64(b, a.AckedSeq)
	binary.BigEndian.PutUint64(b[8:], uint64(unixNano(a.LastSeen)))
	if a.Online {
		b[16] = 1
	}
	return b
}

// decodeAgentState sets a's delivery state from b.
func decodeAgentState(b []byte, a *store.Agent) error {
	if len(b) != agentStateSize || b[16] > 1 {
		return fmt.Errorf("agent %s: malformed delivery state (%d bytes)", a.ID, len(b))
	}
	a.AckedSeq = binary.BigEndian.Uint64(b)
	a.LastSeen = fromUnixNano(int64(binary.BigEndian.Uint64(b[8:])))
	a.Online = b[16] == 1
	return nil
}

// readAgentState applies the agent's state record to a, which must have its ID and Tenant
// set. It reports whether there was one.
func readAgentState(txn *badgerdb.Txn, a *store.Agent) (bool, error) {
	item, err := txn.Get(agentStateKey(a.Tenant, a.ID))
	if errors.Is(err, badgerdb.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, item.Value(func(v []byte) error { return decodeAgentState(v, a) })
}

// writeAgentState stores a's delivery state.
func writeAgentState(txn *badgerdb.Txn, a *store.Agent) error {
	return txn.Set(agentStateKey(a.Tenant, a.ID), encodeAgentState(a))
}

// overlayAgentStates applies the tenant's state records to agents, which are the tenant's
// agents in id order (as its agent records are stored), in one pass over the records.
func overlayAgentStates(txn *badgerdb.Txn, tenant string, agents []store.Agent) error {
	prefix := agentStatesPrefix(tenant)
	opts := badgerdb.DefaultIteratorOptions
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	defer it.Close()

	i := 0
	for it.Rewind(); it.Valid() && i < len(agents); it.Next() {
		id := string(it.Item().Key()[len(prefix):])
		for i < len(agents) && agents[i].ID < id {
			i++
		}
		if i == len(agents) || agents[i].ID != id {
			continue // a state without its agent record: nothing to show it on
		}
		if err := it.Item().Value(func(v []byte) error {
			return decodeAgentState(v, &agents[i])
		}); err != nil {
			return err
		}
	}
	return nil
}
