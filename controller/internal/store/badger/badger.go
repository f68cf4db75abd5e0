// Package badger implements store.Store on an embedded Badger v4 database, the default
// single-controller storage. Writes are synced to disk before a call returns.
//
// Keys (tenant-scoped objects under "tenant:<id>:", as the Redis store does):
//
//	tenant/<id>                              Tenant
//	operator:<name>                          Operator
//	tenant:<t>:token:<token-id>              Token (with the SHA-256 of its secret)
//	tenant:<t>:agent:<agent-id>              Agent
//	tenant:<t>:agentstate:<agent-id>         its AckedSeq, LastSeen, Online (binary)
//	tenant:<t>:msg:<agent-id>:<seq>          Message (binary, msgcodec.go); seq as 20
//	                                         zero-padded decimal digits
//	idx:agent:<agent-id>                     tenant id of the agent
//	idx:token:<token-id>                     tenant id of the token
//	idx:tokenhash:<hex sha-256>              token id
//
// Values are JSON encodings of the store types, except the two written for every agent
// message: the message itself and the agent's delivery state, both binary.
// Tenant ids, agent ids and token ids never contain ':' (identity.ValidName), so every
// prefix above is unambiguous. Heartbeat messages expire after Options.HeartbeatTTL;
// every other message is kept.
package badger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/wardsec/ward/controller/internal/store"
)

// DefaultHeartbeatTTL is how long heartbeat messages are kept unless Options says otherwise.
const DefaultHeartbeatTTL = 7 * 24 * time.Hour

// Options configure a Store.
type Options struct {
	// Dir is the database directory; created if missing. Required.
	Dir string
	// Log receives Badger's warnings and errors (its chatter below warn is dropped).
	// Nil discards them.
	Log *slog.Logger
	// HeartbeatTTL is how long messages of type "heartbeat" are kept; zero means
	// DefaultHeartbeatTTL, negative keeps them forever.
	HeartbeatTTL time.Duration
}

// Store is the Badger-backed store.Store. It is safe for concurrent use; Close releases
// the database and must be called once.
type Store struct {
	db           *badgerdb.DB
	log          *slog.Logger
	heartbeatTTL time.Duration // <= 0: keep forever
	grp          group         // commits the remediation state's updates together
}

var _ store.Store = (*Store)(nil)

// Open opens (or creates) the store in dir with default options.
func Open(dir string, log *slog.Logger) (*Store, error) {
	return OpenOptions(Options{Dir: dir, Log: log})
}

// OpenOptions opens (or creates) the store described by o.
func OpenOptions(o Options) (*Store, error) {
	switch {
	case o.Dir == "":
		return nil, errors.New("badger: open: no directory")
	case o.Log == nil:
		o.Log = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.HeartbeatTTL == 0:
		o.HeartbeatTTL = DefaultHeartbeatTTL
	case o.HeartbeatTTL < 0:
		o.HeartbeatTTL = 0
	}

	opts := badgerdb.DefaultOptions(o.Dir).
		WithSyncWrites(true).
		WithLogger(slogAdapter{log: o.Log}).
		WithLoggingLevel(badgerdb.WARNING).
		WithMemTableSize(16 << 20).
		WithBaseTableSize(8 << 20).
		WithBlockCacheSize(32 << 20).
		WithCompression(options.None).
		WithValueLogFileSize(256 << 20).
		WithNumCompactors(2)
	db, err := badgerdb.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("badger: open %s: %w", o.Dir, err)
	}
	return &Store{db: db, log: o.Log, heartbeatTTL: o.HeartbeatTTL}, nil
}

// Ping reports an error once the store is closed.
func (s *Store) Ping(ctx context.Context) error {
	if s.db.IsClosed() {
		return errors.New("badger: closed")
	}
	return ctx.Err()
}

// Close flushes and closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("badger: close: %w", err)
	}
	return nil
}

// RunGC reclaims space in Badger's value log every interval until ctx ends. It returns
// nil on cancellation.
func (s *Store) RunGC(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for s.db.RunValueLogGC(0.5) == nil {
			// each successful run rewrote one file; go on until nothing is left to gain
		}
	}
}

// update runs fn in a read-write transaction, committed with sync, and runs it again when
// Badger reports a conflict with a concurrent transaction. fn may run more than once.
func (s *Store) update(ctx context.Context, fn func(txn *badgerdb.Txn) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.db.Update(fn)
		if !errors.Is(err, badgerdb.ErrConflict) {
			return err
		}
		if attempt >= 3 {
			// many writers on one key: spread them out a little
			time.Sleep(time.Duration(rand.Int64N(int64(time.Millisecond))))
		}
	}
}

// view runs fn in a read-only transaction.
func (s *Store) view(ctx context.Context, fn func(txn *badgerdb.Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

// slogAdapter passes Badger's warnings and errors to slog. Badger is asked for nothing
// below warning, and anything that still arrives below it is dropped.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Errorf(f string, args ...any) {
	a.log.Error("badger: " + trimNewline(fmt.Sprintf(f, args...)))
}

func (a slogAdapter) Warningf(f string, args ...any) {
	a.log.Warn("badger: " + trimNewline(fmt.Sprintf(f, args...)))
}

func (slogAdapter) Infof(string, ...any)  {}
func (slogAdapter) Debugf(string, ...any) {}

func trimNewline(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}
