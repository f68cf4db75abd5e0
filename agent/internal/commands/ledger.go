package commands

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// keepAfterExpiry is how long an id stays in the ledger after its command expired: an
// expired command is refused anyway, so older ids can go.
const keepAfterExpiry = 24 * time.Hour

// ledger is the durable set of executed command ids: one line "id expiry-unix" per
// command, appended and fsynced before the command runs.
type ledger struct {
	path string

	mu  sync.Mutex
	ids map[string]time.Time
}

func openLedger(path string, now time.Time) (*ledger, error) {
	l := &ledger{path: path, ids: make(map[string]time.Time)}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open command ledger: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		id, exp, ok := strings.Cut(sc.Text(), " ")
		sec, err := strconv.ParseInt(exp, 10, 64)
		if !ok || err != nil {
			continue
		}
		if t := time.Unix(sec, 0); now.Before(t.Add(keepAfterExpiry)) {
			l.ids[id] = t
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read command ledger: %w", err)
	}
	return l, l.rewrite()
}

// record adds id; it returns false when id was already there.
func (l *ledger) record(id string, expires time.Time) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.ids[id]; ok {
		return false, nil
	}
	if strings.ContainsAny(id, " \n") {
		return false, errors.New("command id contains white space")
	}
	f, err := os.OpenFile(l.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return false, err
	}
	_, err = fmt.Fprintf(f, "%s %d\n", id, expires.Unix())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, err
	}
	l.ids[id] = expires
	return true, nil
}

// rewrite compacts the ledger to the ids kept in memory.
func (l *ledger) rewrite() error {
	var b strings.Builder
	for id, t := range l.ids {
		fmt.Fprintf(&b, "%s %d\n", id, t.Unix())
	}
	tmp := l.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("compact command ledger: %w", err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		return fmt.Errorf("compact command ledger: %w", err)
	}
	return nil
}
