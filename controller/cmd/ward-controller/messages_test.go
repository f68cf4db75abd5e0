package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
)

func TestSummariseMessagesCountsAbsentSequenceNumbers(t *testing.T) {
	ctx := context.Background()
	st, err := badger.Open(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	now := time.Now()
	if err := st.CreateTenant(ctx, store.Tenant{ID: "clinic-a", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	agent := store.Agent{ID: "a1", Tenant: "clinic-a", EnrolledAt: now,
		Host: store.HostFacts{Hostname: "frontdesk"}}
	if err := st.CreateAgent(ctx, agent); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{1, 2, 5} { // 3 and 4 were dropped by the agent's full spool
		m := store.Message{Tenant: "clinic-a", Agent: "a1", Seq: seq, Type: "heartbeat",
			CreatedAt: now, ReceivedAt: now}
		if _, err := st.CommitMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	var out bytes.Buffer
	cmd := &cobra.Command{}
	cmd.SetContext(ctx)
	if err := summariseMessages(cmd, st, "clinic-a", &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want a header and one row, got:\n%s", out.String())
	}
	got := strings.Fields(lines[1])
	want := []string{"clinic-a", "a1", "frontdesk", "5", "3", "3", "1..5", "2"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("row = %v, want %v", got, want)
	}
}
