package main

import (
	"log/slog"
	"strings"
	"testing"
)

func TestServeDebugLoopbackOnly(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "localhost:0", "nonsense"} {
		if stop, err := serveDebug(addr, log); err == nil {
			stop()
			t.Errorf("serveDebug(%q) served; want a refusal", addr)
		} else if !strings.Contains(err.Error(), "debug listen") {
			t.Errorf("serveDebug(%q) error %q does not name the flag", addr, err)
		}
	}
}
