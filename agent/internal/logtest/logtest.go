// Package logtest gives tests a *slog.Logger that writes to t.Log, so that log lines appear
// with the test that produced them and only when it fails or runs with -v.
package logtest

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// New returns a debug-level text logger writing to tb.Log. Lines logged after the test
// has finished are discarded instead of panicking.
func New(tb testing.TB) *slog.Logger {
	w := &writer{tb: tb}
	tb.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type writer struct {
	tb   testing.TB
	mu   sync.Mutex
	done bool
}

func (w *writer) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Helper()
		w.tb.Log(strings.TrimRight(string(bytes.Clone(p)), "\n"))
	}
	return len(p), nil
}

// Recorder is a slog.Handler-backed log that keeps every message text, for tests that assert
// on security-relevant events. Safe for concurrent use.
type Recorder struct {
	mu   sync.Mutex
	msgs []string
}

// NewRecorder returns a logger that writes to tb.Log and also records each line in r.
func NewRecorder(tb testing.TB) (*slog.Logger, *Recorder) {
	r := &Recorder{}
	w := &writer{tb: tb}
	tb.Cleanup(w.stop)
	h := slog.NewTextHandler(multi{w, r}, &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(h), r
}

// Write records one formatted log line.
func (r *Recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.msgs = append(r.msgs, string(p))
	r.mu.Unlock()
	return len(p), nil
}

// Contains reports whether any recorded line contains s.
func (r *Recorder) Contains(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// Count returns how many recorded lines contain s.
func (r *Recorder) Count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if strings.Contains(m, s) {
			n++
		}
	}
	return n
}

type multi []interface{ Write([]byte) (int, error) }

func (m multi) Write(p []byte) (int, error) {
	for _, w := range m {
		w.Write(p)
	}
	return len(p), nil
}
