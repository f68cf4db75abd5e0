package main

import (
	"context"
	"runtime/debug"
	"time"
)

// The agent sits idle between short bursts of work (a baseline evaluation, a command, a
// scan on a collector), and every clinic server pays for its resident memory. Two
// settings keep that small: the heap may grow to 1.5 times the live data rather than
// twice, and once a minute the memory the bursts freed goes back to the system (a full
// collection of a heap of a few MiB costs about a millisecond).
const (
	gcPercent      = 50
	returnInterval = time.Minute
)

// tuneMemory applies gcPercent unless GOGC is set, and returns freed memory to the system
// shortly after start and then every returnInterval until ctx ends.
func tuneMemory(ctx context.Context, gogcSet bool) {
	if !gogcSet {
		debug.SetGCPercent(gcPercent)
	}
	first := time.NewTimer(3 * time.Second)
	defer first.Stop()
	select {
	case <-ctx.Done():
		return
	case <-first.C:
		debug.FreeOSMemory()
	}
	tick := time.NewTicker(returnInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			debug.FreeOSMemory()
		}
	}
}
