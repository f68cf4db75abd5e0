package badger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/wardsec/ward/controller/internal/store"
)

// Evidence keys (values are binary for records, JSON otherwise):
//
//	tenant:<t>:ev:head                  JSON {size, hash}
//	tenant:<t>:ev:rec:<seq>             32-byte chain hash, then the canonical body
//	tenant:<t>:ev:cp:<size>             EvidenceCheckpoint
//	tenant:<t>:ev:wit:<size>:<agent>    EvidenceWitness
//
// with seq and size as 20 zero-padded decimal digits.

var _ store.Evidence = (*Store)(nil)

func evHeadKey(t string) []byte   { return []byte("tenant:" + t + ":ev:head") }
func evRecPrefix(t string) []byte { return []byte("tenant:" + t + ":ev:rec:") }
func evCPPrefix(t string) []byte  { return []byte("tenant:" + t + ":ev:cp:") }
func evWitPrefix(t string) []byte { return []byte("tenant:" + t + ":ev:wit:") }

func evRecKey(t string, seq uint64) []byte { return fmt.Appendf(evRecPrefix(t), "%020d", seq) }
func evCPKey(t string, size uint64) []byte { return fmt.Appendf(evCPPrefix(t), "%020d", size) }

func evWitKey(t string, size uint64, agent string) []byte {
	return fmt.Appendf(evWitPrefix(t), "%020d:%s", size, agent)
}

type headJSON struct {
	Size uint64   `json:"size"`
	Hash [32]byte `json:"hash"`
}

func readHead(txn *badgerdb.Txn, tenant string) (store.EvidenceHead, error) {
	var h headJSON
	err := get(txn, evHeadKey(tenant), &h)
	if errors.Is(err, store.ErrNotFound) {
		return store.EvidenceHead{}, nil
	}
	return store.EvidenceHead{Size: h.Size, Hash: h.Hash}, err
}

// EvidenceHead implements store.Evidence.
func (s *Store) EvidenceHead(ctx context.Context, tenant string) (store.EvidenceHead, error) {
	var h store.EvidenceHead
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		var err error
		h, err = readHead(txn, tenant)
		return err
	})
	if err != nil {
		return h, fmt.Errorf("badger: evidence head %s: %w", tenant, err)
	}
	return h, nil
}

// AppendEvidence implements store.Evidence.
func (s *Store) AppendEvidence(ctx context.Context, tenant string, after store.EvidenceHead,
	recs []store.EvidenceRecord) error {
	if len(recs) == 0 {
		return nil
	}
	for i, r := range recs {
		if r.Seq != after.Size+uint64(i)+1 {
			return fmt.Errorf("badger: append evidence %s: record %d out of sequence", tenant, r.Seq)
		}
	}
	last := recs[len(recs)-1]
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		h, err := readHead(txn, tenant)
		if err != nil {
			return err
		}
		if h != after {
			return store.ErrEvidenceConflict
		}
		// A failure discards the whole transaction: enrollments may write as they go.
		for _, r := range recs {
			if r.Enrollment == nil {
				continue
			}
			if err := appendEnrollment(txn, r.Enrollment); err != nil {
				return &store.EnrollmentError{Seq: r.Seq, Err: err}
			}
		}
		for _, r := range recs {
			val := make([]byte, 0, 32+len(r.Body))
			val = append(append(val, r.Hash[:]...), r.Body...)
			if err := txn.Set(evRecKey(tenant, r.Seq), val); err != nil {
				return err
			}
		}
		return put(txn, evHeadKey(tenant), headJSON{Size: last.Seq, Hash: last.Hash})
	})
	if err != nil {
		return fmt.Errorf("badger: append evidence %s: %w", tenant, err)
	}
	return nil
}

// appendEnrollment checks and stores en, as EnrollAgent does.
func appendEnrollment(txn *badgerdb.Txn, en *store.Enrollment) error {
	_, _, err := enrollAgent(txn, en.Hash, en.Source, en.Now,
		func(store.Token) (store.Agent, error) { return en.Agent, nil })
	return err
}

// ListEvidence implements store.Evidence.
func (s *Store) ListEvidence(ctx context.Context, tenant string, after uint64, limit int) (
	[]store.EvidenceRecord, error) {
	var out []store.EvidenceRecord
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		base, err := readBase(txn, tenant)
		if err != nil {
			return err
		}
		after = max(after, base.Size) // pruned, even while a prune is under way
		prefix := evRecPrefix(tenant)
		opts := badgerdb.DefaultIteratorOptions
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(evRecKey(tenant, after+1)); it.ValidForPrefix(prefix); it.Next() {
			if limit > 0 && len(out) >= limit {
				return nil
			}
			val, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if len(val) < 32 {
				return fmt.Errorf("short evidence record %s", it.Item().Key())
			}
			var r store.EvidenceRecord
			if _, err := fmt.Sscanf(string(it.Item().Key()[len(prefix):]), "%d", &r.Seq); err != nil {
				return fmt.Errorf("evidence key %s: %w", it.Item().Key(), err)
			}
			copy(r.Hash[:], val[:32])
			r.Body = val[32:]
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("badger: list evidence %s: %w", tenant, err)
	}
	return out, nil
}

// PutCheckpoint implements store.Evidence.
func (s *Store) PutCheckpoint(ctx context.Context, cp store.EvidenceCheckpoint) error {
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		key := evCPKey(cp.Tenant, cp.Size)
		ok, err := exists(txn, key)
		if err != nil {
			return err
		}
		if ok {
			return store.ErrExists
		}
		return put(txn, key, cp)
	})
	if err != nil {
		return fmt.Errorf("badger: put checkpoint %s/%d: %w", cp.Tenant, cp.Size, err)
	}
	return nil
}

// ListCheckpoints implements store.Evidence.
func (s *Store) ListCheckpoints(ctx context.Context, tenant string, after uint64) (
	[]store.EvidenceCheckpoint, error) {
	var out []store.EvidenceCheckpoint
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		return eachFrom(txn, evCPPrefix(tenant), evCPKey(tenant, after+1),
			func(cp store.EvidenceCheckpoint) error {
				out = append(out, cp)
				return nil
			})
	})
	if err != nil {
		return nil, fmt.Errorf("badger: list checkpoints %s: %w", tenant, err)
	}
	return out, nil
}

// PutWitness implements store.Evidence.
func (s *Store) PutWitness(ctx context.Context, w store.EvidenceWitness) error {
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		return put(txn, evWitKey(w.Tenant, w.Size, w.Agent), w)
	})
	if err != nil {
		return fmt.Errorf("badger: put witness %s/%d/%s: %w", w.Tenant, w.Size, w.Agent, err)
	}
	return nil
}

// ListWitnesses implements store.Evidence.
func (s *Store) ListWitnesses(ctx context.Context, tenant string, after uint64) (
	[]store.EvidenceWitness, error) {
	var out []store.EvidenceWitness
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		start := fmt.Appendf(evWitPrefix(tenant), "%020d", after+1)
		return eachFrom(txn, evWitPrefix(tenant), start, func(w store.EvidenceWitness) error {
			out = append(out, w)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("badger: list witnesses %s: %w", tenant, err)
	}
	return out, nil
}

// eachFrom decodes every JSON value under prefix from the key start on, in key order.
func eachFrom[T any](txn *badgerdb.Txn, prefix, start []byte, fn func(T) error) error {
	opts := badgerdb.DefaultIteratorOptions
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Seek(start); it.ValidForPrefix(prefix); it.Next() {
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
