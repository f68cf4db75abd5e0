package badger

import (
	"context"
	"errors"
	"sync"

	badgerdb "github.com/dgraph-io/badger/v4"
)

// maxGroup bounds the updates committed in one transaction.
const maxGroup = 128

// maxLeaders is how many grouped transactions may be under way at once: while one waits
// for its sync, the next one runs its updates.
const maxLeaders = 2

// group commits concurrent updates together: Badger syncs its log once per transaction,
// so many small synced transactions are bounded by the disk's sync rate, while one
// transaction carrying many updates costs one sync. There is no background goroutine: a
// caller that finds fewer than maxLeaders commits under way becomes a leader and commits
// what has queued, batch after batch, until the queue is empty; the others wait for their
// result. Leaders' transactions that touch the same keys conflict and are retried.
type group struct {
	mu      sync.Mutex // guards the fields below
	pending []*groupReq
	leaders int // callers committing batches
}

// groupReq is one queued update.
type groupReq struct {
	fn   func(txn *badgerdb.Txn) error
	err  error
	done chan struct{}
}

// errSplit aborts a grouped transaction that Badger found too big.
var errSplit = errors.New("group too big")

// groupUpdate runs fn in a read-write transaction shared with concurrent callers,
// committed with sync, and returns fn's error or the commit's. Like update it may run fn
// more than once. fn must return any error of its own before it writes anything: a
// failing fn is left out of the transaction only because it wrote nothing. Updates in one
// transaction see each other's writes in queue order, as if committed one after another.
func (s *Store) groupUpdate(ctx context.Context, fn func(txn *badgerdb.Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &groupReq{fn: fn, done: make(chan struct{})}

	g := &s.grp
	g.mu.Lock()
	g.pending = append(g.pending, r)
	if g.leaders >= maxLeaders {
		g.mu.Unlock()
		<-r.done
		return r.err
	}
	g.leaders++
	for len(g.pending) > 0 {
		n := min(len(g.pending), maxGroup)
		batch := g.pending[:n:n]
		g.pending = g.pending[n:]
		g.mu.Unlock()
		s.commitGroup(ctx, batch)
		g.mu.Lock()
	}
	g.leaders--
	g.mu.Unlock()
	<-r.done
	return r.err
}

// commitGroup commits batch in one transaction, retried on conflicts, and releases its
// callers. A batch too big for one transaction is committed one update at a time.
func (s *Store) commitGroup(ctx context.Context, batch []*groupReq) {
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()

	err := s.update(context.WithoutCancel(ctx), func(txn *badgerdb.Txn) error {
		for _, r := range batch {
			r.err = r.fn(txn)
			if errors.Is(r.err, badgerdb.ErrTxnTooBig) {
				return errSplit
			}
		}
		return nil
	})
	if errors.Is(err, errSplit) {
		for _, r := range batch {
			r.err = s.update(context.WithoutCancel(ctx), r.fn)
		}
		return
	}
	if err != nil {
		for _, r := range batch {
			if r.err == nil {
				r.err = err
			}
		}
	}
}
