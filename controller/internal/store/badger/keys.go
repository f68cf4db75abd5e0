package badger

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/wardsec/ward/controller/internal/store"
)

func tenantKey(id string) []byte        { return []byte("tenant/" + id) }
func tenantsPrefix() []byte             { return []byte("tenant/") }
func operatorKey(name string) []byte    { return []byte("operator:" + name) }
func operatorsPrefix() []byte           { return []byte("operator:") }
func tokenKey(tenant, id string) []byte { return []byte("tenant:" + tenant + ":token:" + id) }
func tokensPrefix(tenant string) []byte { return []byte("tenant:" + tenant + ":token:") }
func agentKey(tenant, id string) []byte { return []byte("tenant:" + tenant + ":agent:" + id) }
func agentsPrefix(tenant string) []byte { return []byte("tenant:" + tenant + ":agent:") }
func agentIndexKey(id string) []byte    { return []byte("idx:agent:" + id) }
func tokenIndexKey(id string) []byte    { return []byte("idx:token:" + id) }

// revokedPrefix indexes revoked agents: idx:revoked:<agent id> = tenant.
const revokedPrefix = "idx:revoked:"

func revokedIndexKey(id string) []byte { return []byte(revokedPrefix + id) }

func tokenHashKey(hash []byte) []byte {
	return []byte("idx:tokenhash:" + hex.EncodeToString(hash))
}

func messagesPrefix(tenant, agent string) []byte {
	return []byte("tenant:" + tenant + ":msg:" + agent + ":")
}

func messageKey(tenant, agent string, seq uint64) []byte {
	return fmt.Appendf(messagesPrefix(tenant, agent), "%020d", seq)
}

// get reads key and decodes its JSON value into v. A missing key is store.ErrNotFound.
func get(txn *badgerdb.Txn, key []byte, v any) error {
	item, err := txn.Get(key)
	if errors.Is(err, badgerdb.ErrKeyNotFound) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	return item.Value(func(val []byte) error { return json.Unmarshal(val, v) })
}

// getString reads a key whose value is a plain string (the indexes).
func getString(txn *badgerdb.Txn, key []byte) (string, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badgerdb.ErrKeyNotFound) {
		return "", store.ErrNotFound
	}
	if err != nil {
		return "", err
	}
	val, err := item.ValueCopy(nil)
	return string(val), err
}

// exists reports whether key is present.
func exists(txn *badgerdb.Txn, key []byte) (bool, error) {
	_, err := txn.Get(key)
	if errors.Is(err, badgerdb.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// put encodes v as JSON under key.
func put(txn *badgerdb.Txn, key []byte, v any) error {
	val, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set(key, val)
}

// each decodes every value under prefix, in key order, and passes it to fn.
func each[T any](txn *badgerdb.Txn, prefix []byte, fn func(T) error) error {
	opts := badgerdb.DefaultIteratorOptions
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		var v T
		err := it.Item().Value(func(val []byte) error { return json.Unmarshal(val, &v) })
		if err != nil {
			return fmt.Errorf("decode %s: %w", it.Item().Key(), err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}
