package remediation

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
	"github.com/wardsec/ward/pkg/policysig"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*defaultPolicy[...]).processItems"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*Cache[...]).processItems"),
	)
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// catalog is a fixed runbook catalog: SSH-002 -> RB-SSH-001 (auto), FW-001 -> RB-FW-001
// (needs approval), AUD-001 -> RB-AUD-001 (auto), NOFIX-001 -> none.
type catalog struct{}

var runbooks = map[string]Runbook{
	"RB-SSH-001": {ID: "RB-SSH-001", Checks: []string{"SSH-002"}, Steps: []Step{
		{Action: "ensure_kv", Params: map[string]string{"path": "/etc/ssh/sshd_config",
			"key": "PasswordAuthentication", "value": "no"}},
		{Action: "reload_service", Params: map[string]string{"service": "sshd"}},
	}},
	"RB-FW-001":  {ID: "RB-FW-001", Checks: []string{"FW-001"}, RequiresApproval: true},
	"RB-AUD-001": {ID: "RB-AUD-001", Checks: []string{"AUD-001"}},
}

func (catalog) RunbookFor(_ context.Context, _, check string) (Runbook, bool, error) {
	for _, rb := range runbooks {
		if slices.Contains(rb.Checks, check) {
			return rb, true, nil
		}
	}
	return Runbook{}, false, nil
}

func (catalog) Runbook(id string) (Runbook, bool) {
	rb, ok := runbooks[id]
	return rb, ok
}

func (catalog) Severity(context.Context, string, string) string { return "high" }

func (catalog) Excluded(_ context.Context, _, check string) bool { return check == "EXCL-001" }

// sender records what the engine sends to connected agents.
type sender struct {
	mu        sync.Mutex
	connected map[string]bool
	sent      map[string][]*wardv1.SignedPayload
}

func newSender() *sender {
	return &sender{connected: map[string]bool{}, sent: map[string][]*wardv1.SignedPayload{}}
}

func (s *sender) Send(agent string, m *wardv1.ConnectResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connected[agent] {
		return fmt.Errorf("send to %s: %w", agent, ErrNotConnected)
	}
	s.sent[agent] = append(s.sent[agent], m.GetCommand())
	return nil
}

func (s *sender) connect(agent string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connected[agent] = true
}

func (s *sender) commands(agent string) []*wardv1.SignedPayload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent[agent])
}

// recorder keeps the decisions.
type recorder struct {
	mu sync.Mutex
	ds []Decision
}

func (r *recorder) Record(_ context.Context, d Decision) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ds = append(r.ds, d)
	return nil
}

func (r *recorder) actions(incident string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, d := range r.ds {
		if d.Incident == incident {
			out = append(out, d.Action)
		}
	}
	return out
}

type escalator struct {
	mu  sync.Mutex
	got []Escalation
}

func (e *escalator) Escalate(_ context.Context, esc Escalation) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, esc)
	return nil
}

func (e *escalator) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.got)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is an engine over a real Badger store and a real policy key, with tenant t1
// and agents a1 (tier 1), a2 (tier 2), a3 (tier 3).
type harness struct {
	t      *testing.T
	dir    string
	st     *badger.Store
	key    *ca.PolicyKey
	send   *sender
	rec    *recorder
	esc    *escalator
	clock  *clock
	engine *Engine
	cfg    func(*Config)
}

func newHarness(t *testing.T, cfg func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), send: newSender(), rec: &recorder{},
		esc: &escalator{}, clock: &clock{now: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)},
		cfg: cfg}
	if err := ca.CreatePolicyKey(h.dir); err != nil {
		t.Fatal(err)
	}
	var err error
	if h.key, err = ca.LoadPolicyKey(h.dir); err != nil {
		t.Fatal(err)
	}
	h.open()
	ctx := context.Background()
	if err := h.st.CreateTenant(ctx, store.Tenant{ID: "t1"}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		a := store.Agent{ID: fmt.Sprintf("a%d", i), Tenant: "t1", Tier: uint32(i),
			LastSeen: h.clock.Now(), Online: true}
		if err := h.st.CreateAgent(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// open opens the store and a new engine on it (again after close: a restart).
func (h *harness) open() {
	h.t.Helper()
	var err error
	h.st, err = badger.Open(h.dir+"/db", testLog(h.t))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { h.st.Close() })
	cfg := Config{Store: h.st, Catalog: catalog{}, Signer: h.key, Sender: h.send,
		Recorder: h.rec, Escalator: h.esc, Log: testLog(h.t), Clock: h.clock.Now}
	if h.cfg != nil {
		h.cfg(&cfg)
	}
	h.engine, err = New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) restart() {
	h.t.Helper()
	if err := h.st.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

func (h *harness) drift(agent, commandID string, results map[string]wardv1.CheckState) {
	h.t.Helper()
	r := &wardv1.DriftReport{BaselineId: "hipaa-v1", CommandId: commandID}
	for check, st := range results {
		r.Results = append(r.Results, &wardv1.CheckResult{CheckId: check, State: st,
			Observed: "PasswordAuthentication yes", Since: timestamppb.New(h.clock.Now())})
	}
	if err := h.engine.HandleDrift(context.Background(), "t1", agent, r); err != nil {
		h.t.Fatalf("HandleDrift: %v", err)
	}
}

func (h *harness) result(agent, commandID string, st wardv1.CommandStatus) error {
	return h.engine.HandleResult(context.Background(), "t1", agent,
		&wardv1.CommandResult{CommandId: commandID, Status: st})
}

func (h *harness) incident(agent, check string) store.Incident {
	h.t.Helper()
	all, err := h.st.ListIncidents(context.Background(), "t1",
		store.IncidentFilter{Agent: agent, Check: check})
	if err != nil || len(all) == 0 {
		h.t.Fatalf("no incident for %s/%s: %v", agent, check, err)
	}
	return all[len(all)-1]
}

// verifyCommand checks the signature of sp with the policy public key and returns the
// spec.
func (h *harness) verifyCommand(sp *wardv1.SignedPayload) *wardv1.CommandSpec {
	h.t.Helper()
	err := policysig.Verify(h.key.Public(), CommandPayloadType, policysig.Signed{
		PayloadType: sp.GetPayloadType(), Payload: sp.GetPayload(),
		Signature: sp.GetSignature(), KeyID: sp.GetKeyId()})
	if err != nil {
		h.t.Fatalf("command signature: %v", err)
	}
	var spec wardv1.CommandSpec
	if err := proto.Unmarshal(sp.GetPayload(), &spec); err != nil {
		h.t.Fatal(err)
	}
	return &spec
}

const (
	pass = wardv1.CheckState_CHECK_STATE_PASS
	fail = wardv1.CheckState_CHECK_STATE_FAIL
)

func TestDriftToVerifiedResolution(t *testing.T) {
	h := newHarness(t, nil)
	h.send.connect("a1")

	h.drift("a1", "", map[string]wardv1.CheckState{"SSH-002": fail})
	h.drift("a1", "", map[string]wardv1.CheckState{"SSH-002": fail}) // a repeat: no new one

	all, _ := h.st.ListIncidents(context.Background(), "t1", store.IncidentFilter{})
	if len(all) != 1 {
		t.Fatalf("%d incidents, want 1 (deduplicated)", len(all))
	}
	inc := all[0]
	if inc.State != store.IncidentRemediating || inc.Runbook != "RB-SSH-001" {
		t.Fatalf("incident %s runbook %q, want remediating with RB-SSH-001", inc.State,
			inc.Runbook)
	}

	sent := h.send.commands("a1")
	if len(sent) != 1 {
		t.Fatalf("%d commands sent, want 1", len(sent))
	}
	spec := h.verifyCommand(sent[0])
	if spec.GetAgentId() != "a1" || spec.GetTenant() != "t1" ||
		spec.GetRunbookId() != "RB-SSH-001" || len(spec.GetSteps()) != 2 ||
		!slices.Equal(spec.GetVerifyChecks(), []string{"SSH-002"}) ||
		!spec.GetExpiresAt().AsTime().After(h.clock.Now()) ||
		spec.GetCommandId() != inc.Commands[0] {
		t.Fatalf("command spec = %v", spec)
	}
	c, _ := h.st.GetCommand(context.Background(), spec.GetCommandId())
	if c.Status != store.CommandSent {
		t.Errorf("stored command %s, want sent", c.Status)
	}

	if err := h.result("a1", spec.GetCommandId(),
		wardv1.CommandStatus_COMMAND_STATUS_SUCCEEDED); err != nil {
		t.Fatal(err)
	}
	if got := h.incident("a1", "SSH-002"); got.State != store.IncidentRemediating {
		t.Errorf("after a successful result: %s, want remediating until verified",
			got.State)
	}
	h.drift("a1", spec.GetCommandId(), map[string]wardv1.CheckState{"SSH-002": pass})

	got := h.incident("a1", "SSH-002")
	if got.State != store.IncidentResolved || got.ResolvedAt.IsZero() {
		t.Fatalf("after verification: %s, want resolved", got.State)
	}
	want := []string{"incident_opened", "auto_remediated", "command_issued",
		"command_result", "verified", "resolved"}
	if acts := h.rec.actions(got.ID); !slices.Equal(acts, want) {
		t.Errorf("decisions = %v, want %v", acts, want)
	}

	// A later failure opens a new incident.
	h.clock.Advance(time.Minute)
	h.drift("a1", "", map[string]wardv1.CheckState{"SSH-002": fail})
	if again := h.incident("a1", "SSH-002"); again.ID == got.ID ||
		again.State != store.IncidentRemediating {
		t.Errorf("new failure: incident %s %s", again.ID, again.State)
	}
}

func TestExcludedCheckOpensNoIncident(t *testing.T) {
	h := newHarness(t, nil)
	h.drift("a1", "", map[string]wardv1.CheckState{"EXCL-001": fail})
	all, _ := h.st.ListIncidents(context.Background(), "t1", store.IncidentFilter{})
	st, _ := h.st.ListCheckStatuses(context.Background(), "t1", "a1")
	if len(all) != 0 || len(st) != 1 || st[0].State != "fail" {
		t.Errorf("excluded check: %d incidents, statuses %v; want none and one fail",
			len(all), st)
	}
}

func TestApprovalRequired(t *testing.T) {
	tests := []struct {
		name, agent, check, why string
	}{
		{"tier 3 agent", "a3", "SSH-002", "tier 3"},
		{"runbook requires approval", "a1", "FW-001", "requires approval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.send.connect(tt.agent)
			h.drift(tt.agent, "", map[string]wardv1.CheckState{tt.check: fail})

			inc := h.incident(tt.agent, tt.check)
			if inc.State != store.IncidentAwaitingApproval || len(h.send.commands(tt.agent)) != 0 {
				t.Fatalf("state %s with %d commands, want awaiting_approval and none",
					inc.State, len(h.send.commands(tt.agent)))
			}

			got, err := h.engine.Approve(context.Background(), inc.ID, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if got.State != store.IncidentRemediating || got.ApprovedBy != "alice" ||
				len(h.send.commands(tt.agent)) != 1 {
				t.Fatalf("after approval: %s by %q", got.State, got.ApprovedBy)
			}
			if _, err := h.engine.Approve(context.Background(), inc.ID, "bob"); err == nil {
				t.Error("second approval of a remediating incident accepted")
			}
			var approved *Decision
			for _, d := range h.rec.ds {
				if d.Action == "approved" {
					approved = &d
				}
			}
			if approved == nil || approved.Actor != "alice" {
				t.Errorf("approval decision = %+v, want actor alice", approved)
			}
		})
	}
}

func TestFlappingEscalates(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.FlapLimit = 2; c.FlapWindow = time.Hour })
	h.send.connect("a1")

	for i := 0; i < 2; i++ {
		h.drift("a1", "", map[string]wardv1.CheckState{"SSH-002": fail})
		if st := h.incident("a1", "SSH-002").State; st != store.IncidentRemediating {
			t.Fatalf("failure %d: %s, want remediating", i+1, st)
		}
		h.clock.Advance(time.Minute)
		h.drift("a1", "", map[string]wardv1.CheckState{"SSH-002": pass})
		h.clock.Advance(time.Minute)
	}
	h.drift("a1", "", map[string]wardv1.CheckState{"SSH-002": fail})
	inc := h.incident("a1", "SSH-002")
	if inc.State != store.IncidentEscalated || h.esc.count() != 1 {
		t.Fatalf("third failure within the window: %s, %d escalations; want escalated, 1",
			inc.State, h.esc.count())
	}
	if n := len(h.send.commands("a1")); n != 2 {
		t.Errorf("%d commands, want 2 (none for the flapping failure)", n)
	}

	// Outside the window the count starts again.
	h.engine.Resolve(context.Background(), inc.ID, "alice", "fixed by hand")
	h.clock.Advance(2 * time.Hour)
	h.drift("a1", "", map[string]wardv1.CheckState{"SSH-002": fail})
	if st := h.incident("a1", "SSH-002").State; st != store.IncidentRemediating {
		t.Errorf("failure after the window: %s, want remediating", st)
	}
}

func TestConcurrentRemediationsPerTenant(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxConcurrent = 1 })
	h.send.connect("a1")
	h.send.connect("a2")

	h.drift("a1", "", map[string]wardv1.CheckState{"SSH-002": fail})
	h.drift("a2", "", map[string]wardv1.CheckState{"SSH-002": fail})
	first, second := h.incident("a1", "SSH-002"), h.incident("a2", "SSH-002")
	if first.State != store.IncidentRemediating || second.State != store.IncidentOpen {
		t.Fatalf("states %s, %s; want remediating, open", first.State, second.State)
	}

	h.drift("a1", first.Commands[0], map[string]wardv1.CheckState{"SSH-002": pass})
	if st := h.incident("a2", "SSH-002").State; st != store.IncidentRemediating {
		t.Errorf("after the first resolved: %s, want remediating", st)
	}
}

func TestFailedAndExpiredCommandsEscalate(t *testing.T) {
	h := newHarness(t, nil)
	h.send.connect("a1")
	h.drift("a1", "", map[string]wardv1.CheckState{"SSH-002": fail, "AUD-001": fail})

	ssh := h.incident("a1", "SSH-002")
	if err := h.result("a1", ssh.Commands[0],
		wardv1.CommandStatus_COMMAND_STATUS_FAILED); err != nil {
		t.Fatal(err)
	}
	if st := h.incident("a1", "SSH-002").State; st != store.IncidentEscalated {
		t.Errorf("failed command: %s, want escalated", st)
	}
	// A result from another agent for the command is refused.
	if err := h.result("a2", ssh.Commands[0],
		wardv1.CommandStatus_COMMAND_STATUS_SUCCEEDED); err == nil {
		t.Error("result from another agent accepted")
	}

	h.clock.Advance(DefaultCommandTTL + time.Second)
	if err := h.engine.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	aud := h.incident("a1", "AUD-001")
	c, _ := h.st.GetCommand(context.Background(), aud.Commands[0])
	if c.Status != store.CommandExpired || aud.State != store.IncidentEscalated {
		t.Errorf("expired: command %s, incident %s", c.Status, aud.State)
	}
	if h.esc.count() != 2 {
		t.Errorf("%d escalations, want 2", h.esc.count())
	}
	if len(h.esc.got[0].Tried) != 1 || h.esc.got[0].Agent.ID != "a1" {
		t.Errorf("escalation = %+v", h.esc.got[0])
	}
}

func TestCommandsSurviveRestartAndAreResent(t *testing.T) {
	h := newHarness(t, nil)
	h.drift("a1", "", map[string]wardv1.CheckState{"SSH-002": fail}) // a1 not connected
	inc := h.incident("a1", "SSH-002")
	c, _ := h.st.GetCommand(context.Background(), inc.Commands[0])
	if c.Status != store.CommandPending || len(h.send.commands("a1")) != 0 {
		t.Fatalf("command %s, want pending and unsent", c.Status)
	}

	h.restart()
	h.send.connect("a1")
	if err := h.engine.AgentConnected(context.Background(), "t1", "a1", nil); err != nil {
		t.Fatal(err)
	}
	sent := h.send.commands("a1")
	if len(sent) != 1 || h.verifyCommand(sent[0]).GetCommandId() != c.ID {
		t.Fatalf("after reconnect: %d commands sent", len(sent))
	}

	// Sent but no result: a reconnect sends it again; the first result wins.
	h.engine.AgentConnected(context.Background(), "t1", "a1", nil)
	if n := len(h.send.commands("a1")); n != 2 {
		t.Errorf("second reconnect: %d sends, want 2", n)
	}
	h.result("a1", c.ID, wardv1.CommandStatus_COMMAND_STATUS_SUCCEEDED)
	h.result("a1", c.ID, wardv1.CommandStatus_COMMAND_STATUS_REFUSED) // replay refusal
	got, _ := h.st.GetCommand(context.Background(), c.ID)
	if got.Status != store.CommandSucceeded {
		t.Errorf("status %s, want the first result (succeeded)", got.Status)
	}
	if st := h.incident("a1", "SSH-002").State; st != store.IncidentRemediating {
		t.Errorf("incident %s after a replay refusal, want remediating", st)
	}
	h.engine.AgentConnected(context.Background(), "t1", "a1", nil)
	if n := len(h.send.commands("a1")); n != 2 {
		t.Errorf("finished command sent again: %d sends", n)
	}
}

func TestVerificationFailureEscalates(t *testing.T) {
	h := newHarness(t, nil)
	h.send.connect("a1")
	h.drift("a1", "", map[string]wardv1.CheckState{"SSH-002": fail})
	inc := h.incident("a1", "SSH-002")
	h.result("a1", inc.Commands[0], wardv1.CommandStatus_COMMAND_STATUS_SUCCEEDED)
	h.drift("a1", inc.Commands[0], map[string]wardv1.CheckState{"SSH-002": fail})
	if got := h.incident("a1", "SSH-002"); got.State != store.IncidentEscalated {
		t.Errorf("failing verification: %s, want escalated", got.State)
	}
}

func TestOfflineAgentIncident(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.OfflineAfter = 5 * time.Minute })
	ctx := context.Background()
	h.st.UpdateAgent(ctx, "a2", func(a *store.Agent) error {
		a.Online = false
		return nil
	})
	h.clock.Advance(6 * time.Minute)
	for range 2 {
		if err := h.engine.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := h.st.ListIncidents(ctx, "t1", store.IncidentFilter{Check: store.OfflineCheck})
	if len(all) != 1 || all[0].Agent != "a2" || all[0].State != store.IncidentEscalated {
		t.Fatalf("offline incidents = %+v, want one escalated for a2", all)
	}
	if err := h.engine.AgentConnected(ctx, "t1", "a2", nil); err != nil {
		t.Fatal(err)
	}
	if got := h.incident("a2", store.OfflineCheck); got.State != store.IncidentResolved {
		t.Errorf("after reconnect: %s, want resolved", got.State)
	}
}

func TestManualRun(t *testing.T) {
	h := newHarness(t, nil)
	h.send.connect("a3")
	ctx := context.Background()

	c, err := h.engine.RunRunbook(ctx, RunParams{Agent: "a3", Runbook: "RB-AUD-001",
		Actor: "alice", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !c.DryRun || c.IssuedBy != "alice" || c.Status != store.CommandSent {
		t.Errorf("dry run command = %+v", c)
	}
	if spec := h.verifyCommand(h.send.commands("a3")[0]); !spec.GetDryRun() {
		t.Error("signed spec is not a dry run")
	}

	h.drift("a3", "", map[string]wardv1.CheckState{"AUD-001": fail})
	c, err = h.engine.RunRunbook(ctx, RunParams{Agent: "a3", Runbook: "RB-AUD-001",
		Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	inc := h.incident("a3", "AUD-001")
	if inc.State != store.IncidentRemediating || inc.ApprovedBy != "alice" ||
		c.Incident != inc.ID {
		t.Errorf("manual run on an incident: %s by %q, command for %q", inc.State,
			inc.ApprovedBy, c.Incident)
	}
	if _, err := h.engine.RunRunbook(ctx, RunParams{Agent: "a3", Runbook: "RB-NOPE",
		Actor: "alice"}); err == nil {
		t.Error("unknown runbook accepted")
	}
}
