package badger

import (
	"context"
	"strings"
	"testing"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/wardsec/ward/controller/internal/store"
)

// TestAgentStateOverlay checks that the delivery state that commits write beside the agent
// record is what every read shows, in ListAgents for agents with and without one, and that
// UpdateAgent starts from it and keeps it.
func TestAgentStateOverlay(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir(), Options{})
	defer s.Close()

	enrolled := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	if err := s.CreateTenant(ctx, store.Tenant{ID: "clinic-a"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a1", "a2", "a3"} {
		a := store.Agent{ID: id, Tenant: "clinic-a", EnrolledAt: enrolled, LastSeen: enrolled}
		if err := s.CreateAgent(ctx, a); err != nil {
			t.Fatal(err)
		}
	}

	// a2 alone commits: a1 and a3 keep what their records say
	seen := enrolled.Add(time.Hour)
	msgs := []store.Message{
		{Tenant: "clinic-a", Agent: "a2", Seq: 1, Type: "heartbeat", ReceivedAt: seen},
		{Tenant: "clinic-a", Agent: "a2", Seq: 2, Type: "heartbeat", ReceivedAt: seen},
	}
	if _, err := s.CommitMessages(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListAgents(ctx, "clinic-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("%d agents listed, want 3", len(list))
	}
	for _, a := range list {
		want := store.Agent{ID: a.ID, LastSeen: enrolled}
		if a.ID == "a2" {
			want = store.Agent{ID: a.ID, AckedSeq: 2, LastSeen: seen, Online: true}
		}
		if a.AckedSeq != want.AckedSeq || a.Online != want.Online ||
			!a.LastSeen.Equal(want.LastSeen) {
			t.Errorf("listed %s: acked %d online %v last seen %v, want %d %v %v", a.ID,
				a.AckedSeq, a.Online, a.LastSeen, want.AckedSeq, want.Online, want.LastSeen)
		}
	}

	// an update (presence marking the agent offline) sees the state and keeps its change
	a, err := s.UpdateAgent(ctx, "a2", func(a *store.Agent) error {
		if a.AckedSeq != 2 || !a.Online {
			t.Errorf("update started from acked %d online %v, want 2 true", a.AckedSeq, a.Online)
		}
		a.Online = false
		return nil
	})
	if err != nil || a.Online {
		t.Fatalf("update: %+v, %v", a, err)
	}
	if got, err := s.GetAgent(ctx, "a2"); err != nil || got.Online || got.AckedSeq != 2 {
		t.Fatalf("after update: online %v acked %d (%v), want offline at 2", got.Online,
			got.AckedSeq, err)
	}

	// the next commit finds the state again: a duplicate stays one, a new message is new
	dups, err := s.CommitMessages(ctx, []store.Message{
		{Tenant: "clinic-a", Agent: "a2", Seq: 2, Type: "heartbeat", ReceivedAt: seen},
		{Tenant: "clinic-a", Agent: "a2", Seq: 3, Type: "heartbeat", ReceivedAt: seen},
	})
	if err != nil || !dups[0] || dups[1] {
		t.Fatalf("commit after update: duplicates %v, %v; want [true false]", dups, err)
	}
	if got, _ := s.GetAgent(ctx, "a2"); !got.Online || got.AckedSeq != 3 {
		t.Fatalf("after commit: online %v acked %d, want online at 3", got.Online, got.AckedSeq)
	}
}

// TestAgentStateMalformed refuses a damaged state record with an error that names the
// agent, and a commit does not overwrite it.
func TestAgentStateMalformed(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir(), Options{})
	defer s.Close()

	if err := s.CreateTenant(ctx, store.Tenant{ID: "clinic-a"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAgent(ctx, store.Agent{ID: "a1", Tenant: "clinic-a"}); err != nil {
		t.Fatal(err)
	}
	err := s.db.Update(func(txn *badgerdb.Txn) error {
		return txn.Set(agentStateKey("clinic-a", "a1"), []byte("short"))
	})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := s.GetAgent(ctx, "a1"); err == nil || !strings.Contains(err.Error(), "a1") ||
		!strings.Contains(err.Error(), "malformed") {
		t.Errorf("get agent: %v, want a malformed state error naming a1", err)
	}
	if _, err := s.ListAgents(ctx, "clinic-a"); err == nil {
		t.Error("list agents: no error for a malformed state")
	}
	_, err = s.CommitMessages(ctx, []store.Message{
		{Tenant: "clinic-a", Agent: "a1", Seq: 1, Type: "heartbeat", ReceivedAt: time.Now()}})
	if err == nil {
		t.Fatal("commit over a malformed state: no error")
	}
	err = s.db.View(func(txn *badgerdb.Txn) error {
		item, err := txn.Get(agentStateKey("clinic-a", "a1"))
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if string(v) != "short" {
			t.Errorf("state record now %q, want it left as it was", v)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
