package inventory

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/adminapi/adminapitest"
	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/site"
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

// failingRecords refuses every record, like an evidence log that cannot append.
type failingRecords struct{}

func (failingRecords) Record(context.Context, evidence.Entry) (evidence.Receipt, error) {
	return evidence.Receipt{}, errors.New("evidence log unavailable")
}

// TestPollsCaughtUpAfterAFailure: a stored poll report whose records could not be
// appended changes nothing and is applied when the collector connects again, once.
func TestPollsCaughtUpAfterAFailure(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if err := e.st.PutSiteConfig(ctx, "t1", store.SiteConfig{Config: site.Config{
		Subnets: []string{"10.0.0.0/24"}}}); err != nil {
		t.Fatal(err)
	}
	e.ingest(t, ciscoSwitch)
	id := "mac:00:00:0c:9a:11:02"
	targets, err := e.inv.PollTargets(ctx, "t1", "c1")
	if err != nil || len(targets) != 1 || targets[0].Device != id {
		t.Fatalf("poll targets = %v, %v", targets, err)
	}

	t0 := time.Date(2026, 3, 5, 9, 0, 0, 0, time.UTC)
	msgs := make([]*wardv1.ConnectRequest, 0, 2)
	for i, uptime := range []uint64{100_000, 3_000} { // the second is a restart
		r := &wardv1.DevicePollReport{Tenant: "t1", Polls: []*wardv1.DevicePoll{{
			DeviceId: id, Address: "10.0.0.2", Reachable: true, UptimeCentiseconds: uptime,
			PolledAt: timestamppb.New(t0.Add(time.Duration(i) * time.Minute))}}}
		m := &wardv1.ConnectRequest{Seq: uint64(i + 1),
			Body: &wardv1.ConnectRequest_DevicePollReport{DevicePollReport: r}}
		raw, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.CommitMessage(ctx, store.Message{Tenant: "t1", Agent: "c1",
			Seq: m.Seq, Type: "device_poll_report", Body: raw}); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}

	broken, err := New(Config{Store: e.st, Recorder: failingRecords{},
		Log: adminapitest.Log(t)})
	if err != nil {
		t.Fatal(err)
	}
	// Both are stored; processing the first applies every report after the cursor, in
	// order, and stops at the second.
	if err := (Processor{Inventory: broken}).Process(ctx, "t1", "c1", msgs[0]); err == nil {
		t.Fatal("Process succeeded without the restart record")
	}
	if h := e.device(t, id).Health; h == nil || h.UptimeCentis != 100_000 {
		t.Fatalf("health after the failure = %+v, want the first poll's", h)
	}
	if seq, _ := e.st.PollCursor(ctx, "t1", "c1"); seq != 1 {
		t.Errorf("poll cursor after the failure %d, want 1", seq)
	}

	hello := &wardv1.Hello{Host: &wardv1.HostFacts{Roles: []string{"collector"}}}
	for range 2 {
		Observer{Inventory: e.inv}.Connected(ctx, "t1", "c1", []string{"collector"}, hello)
	}
	if h := e.device(t, id).Health; h.UptimeCentis != 3_000 || h.LastRestart.IsZero() {
		t.Errorf("health after catching up = %+v, want the restart applied", h)
	}
	if got := strings.Count(strings.Join(e.rec.types(), "\n"), TypeDeviceRestarted); got != 1 {
		t.Errorf("%d restart records, want 1:\n%v", got, e.rec.types())
	}
	if seq, _ := e.st.PollCursor(ctx, "t1", "c1"); seq != 2 {
		t.Errorf("poll cursor %d, want 2", seq)
	}
}
