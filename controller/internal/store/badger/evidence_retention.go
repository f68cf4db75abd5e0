package badger

import (
	"context"
	"errors"
	"fmt"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/wardsec/ward/controller/internal/store"
)

// Evidence retention keys:
//
//	tenant:<t>:ev:base                  JSON {size, hash}: records up to size are pruned
//	tenant:<t>:ev:arch:<last seq>       EvidenceArchive

var _ store.EvidenceRetention = (*Store)(nil)

func evBaseKey(t string) []byte    { return []byte("tenant:" + t + ":ev:base") }
func evArchPrefix(t string) []byte { return []byte("tenant:" + t + ":ev:arch:") }
func evArchKey(t string, last uint64) []byte {
	return fmt.Appendf(evArchPrefix(t), "%020d", last)
}

// pruneBatch is how many records one prune transaction deletes.
const pruneBatch = 4096

// PutEvidenceArchive implements store.EvidenceRetention.
func (s *Store) PutEvidenceArchive(ctx context.Context, a store.EvidenceArchive) error {
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		key := evArchKey(a.Tenant, a.LastSeq)
		ok, err := exists(txn, key)
		if err != nil {
			return err
		}
		if ok {
			return store.ErrExists
		}
		return put(txn, key, a)
	})
	if err != nil {
		return fmt.Errorf("badger: put evidence archive %s/%d: %w", a.Tenant, a.LastSeq, err)
	}
	return nil
}

// ListEvidenceArchives implements store.EvidenceRetention.
func (s *Store) ListEvidenceArchives(ctx context.Context, tenant string) (
	[]store.EvidenceArchive, error) {
	var out []store.EvidenceArchive
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		return each(txn, evArchPrefix(tenant), func(a store.EvidenceArchive) error {
			out = append(out, a)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("badger: list evidence archives %s: %w", tenant, err)
	}
	return out, nil
}

func readBase(txn *badgerdb.Txn, tenant string) (store.EvidenceHead, error) {
	var h headJSON
	err := get(txn, evBaseKey(tenant), &h)
	if errors.Is(err, store.ErrNotFound) {
		return store.EvidenceHead{}, nil
	}
	return store.EvidenceHead{Size: h.Size, Hash: h.Hash}, err
}

// EvidenceBase implements store.EvidenceRetention.
func (s *Store) EvidenceBase(ctx context.Context, tenant string) (store.EvidenceHead, error) {
	var h store.EvidenceHead
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		var err error
		h, err = readBase(txn, tenant)
		return err
	})
	if err != nil {
		return h, fmt.Errorf("badger: evidence base %s: %w", tenant, err)
	}
	return h, nil
}

// PruneEvidence implements store.EvidenceRetention. The base must be a signed checkpoint
// of the log (same size and head), not before the current base: a prune never goes past
// the newest checkpoint. The base is stored, synced, first; records are then deleted in
// batches of pruneBatch, so a prune cut short is finished by calling again with the same
// base (readers see no record up to the base meanwhile).
func (s *Store) PruneEvidence(ctx context.Context, tenant string, base store.EvidenceHead) error {
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		return setBase(txn, tenant, base)
	})
	if err != nil {
		return fmt.Errorf("badger: prune evidence %s: %w", tenant, err)
	}
	for {
		keys, err := s.recordKeysThrough(ctx, tenant, base.Size)
		if err != nil || len(keys) == 0 {
			return err
		}
		err = s.update(ctx, func(txn *badgerdb.Txn) error {
			for _, k := range keys {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("badger: prune evidence %s: %w", tenant, err)
		}
	}
}

// setBase checks base against the log and stores it as the log's base.
func setBase(txn *badgerdb.Txn, tenant string, base store.EvidenceHead) error {
	old, err := readBase(txn, tenant)
	if err != nil {
		return err
	}
	switch {
	case base.Size == 0:
		return errors.New("base 0: nothing to prune")
	case base.Size < old.Size:
		return fmt.Errorf("base %d is before the log's base %d", base.Size, old.Size)
	case base.Size == old.Size && base.Hash != old.Hash:
		return fmt.Errorf("base %d: head differs from the stored base's", base.Size)
	}
	var cp store.EvidenceCheckpoint
	err = get(txn, evCPKey(tenant, base.Size), &cp)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("base %d is no signed checkpoint of the log", base.Size)
	}
	if err != nil {
		return err
	}
	if cp.Head != base.Hash {
		return fmt.Errorf("base %d: head differs from the checkpoint's", base.Size)
	}
	if base.Size == old.Size {
		return nil // finishing a prune cut short
	}
	return put(txn, evBaseKey(tenant), headJSON{Size: base.Size, Hash: base.Hash})
}

// recordKeysThrough returns up to pruneBatch keys of the tenant's records with seq <= last.
func (s *Store) recordKeysThrough(ctx context.Context, tenant string, last uint64) (
	[][]byte, error) {
	var keys [][]byte
	end := evRecKey(tenant, last)
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		opts := badgerdb.DefaultIteratorOptions
		opts.Prefix = evRecPrefix(tenant)
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid() && len(keys) < pruneBatch; it.Next() {
			k := it.Item().KeyCopy(nil)
			if string(k) > string(end) {
				break
			}
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("badger: prune evidence %s: %w", tenant, err)
	}
	return keys, nil
}
