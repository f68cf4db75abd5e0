package inventory

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/store"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestCounterIncrease(t *testing.T) {
	tests := []struct {
		name      string
		prev, cur uint64
		want      uint64
	}{
		{"unchanged", 7, 7, 0},
		{"rose", 7, 10, 3},
		{"wrapped once", 4_294_967_290, 4, 10},
		{"wrapped from the top", 4_294_967_295, 0, 1},
		{"beyond 32 bits went down: a reset", 1 << 40, 5, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := counterIncrease(tt.prev, tt.cur); got != tt.want {
				t.Errorf("counterIncrease(%d, %d) = %d, want %d", tt.prev, tt.cur, got,
					tt.want)
			}
		})
	}
}

func TestUpdateHealthRestarts(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		lastUptime  uint64 // centiseconds at t0
		uptime      uint64 // a minute later
		wantRestart bool
	}{
		{"uptime grew", 100_000, 106_000, false},
		{"uptime went backwards", 100_000, 3_000, true},
		{"TimeTicks wrapped", maxTicks - 1_000, 5_000, false},
		{"restart just before a wrap would have been due", maxTicks - 20_000, 5_000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := store.DeviceHealth{LastPoll: t0, LastAnswer: t0, Reachable: true,
				UptimeCentis: tt.lastUptime, Interfaces: []store.InterfaceHealth{
					{Index: 1, InErrors: 40}}}
			at := t0.Add(time.Minute)
			out := updateHealth(&h, &wardv1.DevicePoll{Reachable: true,
				PolledAt: timestamppb.New(at), UptimeCentiseconds: tt.uptime,
				Interfaces: []*wardv1.InterfaceCounters{{Index: 1, InErrors: 2}}},
				DefaultDownAfter)
			if out.restarted != tt.wantRestart {
				t.Fatalf("restarted = %v, want %v", out.restarted, tt.wantRestart)
			}
			wantNew := uint64(2) // counters start again from zero after a restart
			if !tt.wantRestart {
				wantNew = counterIncrease(40, 2)
			} else if !h.LastRestart.Equal(at.Add(-time.Duration(tt.uptime) * 10 *
				time.Millisecond)) {
				t.Errorf("last restart = %v", h.LastRestart)
			}
			if got := h.Interfaces[0].NewErrors; got != wantNew {
				t.Errorf("new errors = %d, want %d", got, wantNew)
			}
		})
	}
}

func TestUpdateHealthDownAndStale(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	var h store.DeviceHealth
	miss := func(at time.Time) pollOutcome {
		return updateHealth(&h, &wardv1.DevicePoll{PolledAt: timestamppb.New(at),
			Error: "timeout"}, 3)
	}
	for i := 1; i <= 3; i++ {
		out := miss(t0.Add(time.Duration(i) * time.Minute))
		if out.down != (i == 3) || h.ConsecutiveFailures != i {
			t.Fatalf("miss %d: down %v, failures %d", i, out.down, h.ConsecutiveFailures)
		}
	}
	if !h.Since.Equal(t0.Add(time.Minute)) || h.Reachable {
		t.Errorf("since = %v, reachable %v; want the first miss", h.Since, h.Reachable)
	}
	if out := miss(t0.Add(2 * time.Minute)); !out.stale || h.ConsecutiveFailures != 3 {
		t.Errorf("an older poll was applied: %+v, failures %d", out, h.ConsecutiveFailures)
	}
}
