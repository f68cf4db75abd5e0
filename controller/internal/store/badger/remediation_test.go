package badger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
)

// remediationStore opens a store with tenant "t1" and agent "a1".
func remediationStore(t *testing.T) *Store {
	t.Helper()
	s := open(t, t.TempDir(), Options{})
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if err := s.CreateTenant(ctx, store.Tenant{ID: "t1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAgent(ctx, store.Agent{ID: "a1", Tenant: "t1"}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOpenIncidentDeduplicatesConcurrentOpens(t *testing.T) {
	s := remediationStore(t)
	ctx := context.Background()

	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	ids := map[string]bool{}
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inc, ok, err := s.OpenIncident(ctx, store.Incident{
				ID: fmt.Sprintf("inc-%d", i), Tenant: "t1", Agent: "a1", Check: "SSH-002",
				State: store.IncidentOpen,
			})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				created++
			}
			ids[inc.ID] = true
		}()
	}
	wg.Wait()
	if created != 1 || len(ids) != 1 {
		t.Fatalf("created %d incidents, saw ids %v; want one", created, ids)
	}

	if n, _ := s.CountIncidents(ctx, "t1", store.IncidentOpen); n != 1 {
		t.Errorf("CountIncidents(open) = %d, want 1", n)
	}
}

func TestIncidentLifecycleIndexes(t *testing.T) {
	s := remediationStore(t)
	ctx := context.Background()
	inc := store.Incident{ID: "i1", Tenant: "t1", Agent: "a1", Check: "SSH-002",
		State: store.IncidentOpen, OpenedAt: time.Unix(100, 0)}
	if _, _, err := s.OpenIncident(ctx, inc); err != nil {
		t.Fatal(err)
	}

	setState := func(st store.IncidentState) {
		t.Helper()
		_, err := s.UpdateIncident(ctx, "i1", func(i *store.Incident) error {
			i.State = st
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	setState(store.IncidentRemediating)
	if n, _ := s.CountIncidents(ctx, "t1", store.IncidentRemediating); n != 1 {
		t.Errorf("remediating = %d, want 1", n)
	}
	if n, _ := s.CountIncidents(ctx, "t1", store.IncidentOpen); n != 0 {
		t.Errorf("open = %d, want 0", n)
	}

	setState(store.IncidentResolved)
	if n, _ := s.CountIncidents(ctx, "t1", store.IncidentRemediating); n != 0 {
		t.Errorf("remediating after resolve = %d, want 0", n)
	}
	if _, err := s.UnresolvedIncident(ctx, "t1", "a1", "SSH-002"); !errors.Is(err,
		store.ErrNotFound) {
		t.Errorf("UnresolvedIncident after resolve: %v, want ErrNotFound", err)
	}
	_, err := s.UpdateIncident(ctx, "i1", func(i *store.Incident) error {
		i.State = store.IncidentOpen
		return nil
	})
	if err == nil {
		t.Error("reopening a resolved incident succeeded")
	}

	// A new failure opens a new incident.
	_, ok, err := s.OpenIncident(ctx, store.Incident{ID: "i2", Tenant: "t1", Agent: "a1",
		Check: "SSH-002", State: store.IncidentOpen, OpenedAt: time.Unix(200, 0)})
	if err != nil || !ok {
		t.Fatalf("second incident: created %v, %v", ok, err)
	}
	all, err := s.ListIncidents(ctx, "", store.IncidentFilter{})
	if err != nil || len(all) != 2 || all[0].ID != "i1" || all[1].ID != "i2" {
		t.Fatalf("ListIncidents = %v, %v; want i1, i2", all, err)
	}
	open, _ := s.ListIncidents(ctx, "t1", store.IncidentFilter{Unresolved: true})
	if len(open) != 1 || open[0].ID != "i2" {
		t.Errorf("unresolved = %v, want i2", open)
	}
	got, err := s.GetIncident(ctx, "i2")
	if err != nil || got.Tenant != "t1" {
		t.Errorf("GetIncident = %v, %v", got, err)
	}
}

func TestCommandsUnfinishedSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	ctx := context.Background()
	s.CreateTenant(ctx, store.Tenant{ID: "t1"})
	s.CreateAgent(ctx, store.Agent{ID: "a1", Tenant: "t1"})

	for i, st := range []store.CommandStatus{store.CommandPending, store.CommandSent,
		store.CommandSucceeded} {
		c := store.Command{ID: fmt.Sprintf("c%d", i), Tenant: "t1", Agent: "a1",
			Status: st, IssuedAt: time.Unix(int64(100-i), 0)}
		if err := s.CreateCommand(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	err := s.CreateCommand(ctx, store.Command{ID: "c0", Tenant: "t1", Agent: "a1"})
	if !errors.Is(err, store.ErrExists) {
		t.Errorf("duplicate id: %v, want ErrExists", err)
	}
	err = s.CreateCommand(ctx, store.Command{ID: "x", Tenant: "t1", Agent: "nobody"})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown agent: %v, want ErrNotFound", err)
	}
	s.Close()

	s = open(t, dir, Options{})
	defer s.Close()
	got, err := s.UnfinishedCommands(ctx, "t1", "a1")
	if err != nil || len(got) != 2 || got[0].ID != "c1" || got[1].ID != "c0" {
		t.Fatalf("UnfinishedCommands = %v, %v; want c1, c0", got, err)
	}
	_, err = s.UpdateCommand(ctx, "c1", func(c *store.Command) error {
		c.Status = store.CommandFailed
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = s.UnfinishedCommands(ctx, "t1", "a1")
	if len(got) != 1 || got[0].ID != "c0" {
		t.Errorf("after finishing c1: %v, want c0", got)
	}
}

func TestBaselinesExclusionsAndChecks(t *testing.T) {
	s := remediationStore(t)
	ctx := context.Background()

	if _, err := s.CurrentBaseline(ctx, "t1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CurrentBaseline before any: %v, want ErrNotFound", err)
	}
	v := store.BaselineVersion{Tenant: "t1", BaselineID: "hipaa-v1", Version: "1.0.0",
		Document: []byte("x")}
	if err := s.PutBaseline(ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBaseline(ctx, store.BaselineVersion{Tenant: "nope"}); !errors.Is(err,
		store.ErrNotFound) {
		t.Errorf("PutBaseline unknown tenant: %v", err)
	}
	got, _ := s.CurrentBaseline(ctx, "t1")
	if got.Version != "1.0.0" {
		t.Errorf("CurrentBaseline = %+v", got)
	}

	s.PutExclusion(ctx, store.Exclusion{Tenant: "t1", Check: "FW-001", Reason: "edge fw"})
	ex, _ := s.ListExclusions(ctx, "t1")
	if len(ex) != 1 || ex[0].Reason != "edge fw" {
		t.Errorf("ListExclusions = %v", ex)
	}
	if err := s.DeleteExclusion(ctx, "t1", "FW-001"); err != nil {
		t.Error(err)
	}
	if err := s.DeleteExclusion(ctx, "t1", "FW-001"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}

	s.SetAgentBaseline(ctx, "t1", "a1", "1.0.0", time.Now())
	vs, _ := s.AgentBaselines(ctx, "t1")
	if vs["a1"] != "1.0.0" {
		t.Errorf("AgentBaselines = %v", vs)
	}
	if v, err := s.AgentBaseline(ctx, "t1", "a1"); err != nil || v != "1.0.0" {
		t.Errorf("AgentBaseline(a1) = %q, %v; want 1.0.0", v, err)
	}
	if v, err := s.AgentBaseline(ctx, "t1", "a2"); err != nil || v != "" {
		t.Errorf("AgentBaseline(a2) = %q, %v; want empty for an agent that reported none", v, err)
	}

	for _, c := range []string{"SSH-002", "AUD-001"} {
		_, err := s.UpdateCheckStatus(ctx, "t1", "a1", c, func(cs *store.CheckStatus) error {
			cs.State = "fail"
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	cs, _ := s.ListCheckStatuses(ctx, "t1", "a1")
	if len(cs) != 2 || cs[0].Check != "AUD-001" || cs[0].Agent != "a1" {
		t.Errorf("ListCheckStatuses = %v", cs)
	}
	all, _ := s.ListCheckStatuses(ctx, "t1", "")
	if len(all) != 2 {
		t.Errorf("all statuses = %d, want 2", len(all))
	}
}

// TestGroupedUpdatesFailIndependently runs many concurrent command creations, some of
// them for an agent that does not exist: grouped into shared transactions, each caller
// still gets its own answer and only the good ones are stored.
func TestGroupedUpdatesFailIndependently(t *testing.T) {
	s := remediationStore(t)
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			agent := "a1"
			if i%3 == 0 {
				agent = "ghost"
			}
			errs[i] = s.CreateCommand(ctx, store.Command{ID: fmt.Sprintf("c%03d", i),
				Tenant: "t1", Agent: agent, Status: store.CommandPending,
				IssuedAt: time.Unix(int64(i), 0)})
		}()
	}
	wg.Wait()

	for i, err := range errs {
		switch {
		case i%3 == 0 && !errors.Is(err, store.ErrNotFound):
			t.Errorf("command %d for a missing agent: %v, want ErrNotFound", i, err)
		case i%3 != 0 && err != nil:
			t.Errorf("command %d: %v", i, err)
		}
	}
	got, err := s.UnfinishedCommands(ctx, "t1", "a1")
	if err != nil || len(got) != 133 {
		t.Fatalf("stored %d commands (%v), want 133", len(got), err)
	}
	if _, err := s.GetCommand(ctx, "c000"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused command stored: %v", err)
	}
}
