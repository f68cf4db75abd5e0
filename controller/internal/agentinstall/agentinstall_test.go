package agentinstall

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/wardsec/ward/controller/internal/adminapi/adminapitest"
	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/inventory"
	"github.com/wardsec/ward/controller/internal/remediation"
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

// records keeps evidence entries.
type records struct {
	mu      sync.Mutex
	entries []evidence.Entry
}

func (r *records) Record(_ context.Context, e evidence.Entry) (evidence.Receipt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, e)
	return evidence.Receipt{Tenant: e.Tenant, Seq: uint64(len(r.entries))}, nil
}

func (r *records) find(typ string) (evidence.Entry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.entries {
		if e.Type == typ {
			return e, true
		}
	}
	return evidence.Entry{}, false
}

// streams stands in for the agent streams: it keeps what is sent to connected agents.
type streams struct {
	mu        sync.Mutex
	connected map[string]bool
	sent      []*wardv1.SignedPayload
}

func (s *streams) Send(agent string, m *wardv1.ConnectResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connected[agent] {
		return fmt.Errorf("send to %s: %w", agent, remediation.ErrNotConnected)
	}
	s.sent = append(s.sent, m.GetCommand())
	return nil
}

func (s *streams) connect(agent string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connected[agent] = true
}

func (s *streams) commands() []*wardv1.SignedPayload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*wardv1.SignedPayload(nil), s.sent...)
}

// noRunbooks is an empty runbook catalog.
type noRunbooks struct{}

func (noRunbooks) RunbookFor(context.Context, string, string) (remediation.Runbook, bool,
	error) {
	return remediation.Runbook{}, false, nil
}
func (noRunbooks) Runbook(string) (remediation.Runbook, bool)      { return remediation.Runbook{}, false }
func (noRunbooks) Severity(context.Context, string, string) string { return "" }
func (noRunbooks) Excluded(context.Context, string, string) bool   { return false }

type env struct {
	st      *badger.Store
	key     *ca.PolicyKey
	streams *streams
	engine  *remediation.Engine
	inv     *inventory.Inventory
	rec     *records
	now     time.Time
	mu      sync.Mutex
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

// newEnv assembles a real Badger store (tenant t1, collector c1), the policy key, the
// remediation engine, the inventory and an Installer between them, as the server does.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	log := adminapitest.Log(t)
	st, err := badger.Open(t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateTenant(ctx, store.Tenant{ID: "t1"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAgent(ctx, store.Agent{ID: "c1", Tenant: "t1",
		Roles: []string{store.AgentRoleHost, store.AgentRoleCollector}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := ca.CreatePolicyKey(dir); err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, streams: &streams{connected: map[string]bool{}}, rec: &records{},
		now: time.Date(2026, 3, 5, 9, 0, 0, 0, time.UTC)}
	if e.key, err = ca.LoadPolicyKey(dir); err != nil {
		t.Fatal(err)
	}

	installer := &Installer{Recorder: e.rec, Log: log}
	e.inv, err = inventory.New(inventory.Config{Store: st, Recorder: e.rec,
		Bootstrapper: installer, Log: log, Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	e.engine, err = remediation.New(remediation.Config{Store: st, Catalog: noRunbooks{},
		Signer: e.key, Sender: e.streams, Log: log, Clock: e.clock,
		CollectorOwners: []string{Owner}})
	if err != nil {
		t.Fatal(err)
	}
	installer.Issuer, installer.Failures = e.engine, e.inv
	e.engine.SetResultHandler(Owner, installer)
	return e
}

var linuxServer = &wardv1.DiscoveredDevice{Mac: "00:14:22:3A:5B:11",
	Addresses: []string{"10.0.0.11"}, OsGuess: "Linux 5.0 - 5.14", Methods: []string{"nmap"},
	Services: []*wardv1.DiscoveredService{{Port: 22, Protocol: "tcp", Name: "ssh",
		Product: "OpenSSH", Version: "9.2p1 Debian 2+deb12u2"}}}

// discover has collector c1 report the Linux server and returns its device, which the
// inventory auto-enrolls.
func (e *env) discover(t *testing.T) store.Device {
	t.Helper()
	ctx := context.Background()
	err := e.inv.Ingest(ctx, "t1", "c1", &wardv1.DiscoveryReport{ScanId: "s1",
		Subnet: "10.0.0.0/24", Devices: []*wardv1.DiscoveredDevice{linuxServer},
		HostsDone: 254, HostsFound: 1})
	if err != nil {
		t.Fatal(err)
	}
	devs, err := e.st.ListDevices(ctx, "t1", store.DeviceFilter{})
	if err != nil || len(devs) != 1 {
		t.Fatalf("devices: %v %v", devs, err)
	}
	return devs[0]
}

func (e *env) device(t *testing.T, id string) store.Device {
	t.Helper()
	d, err := e.st.GetDevice(context.Background(), "t1", id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// bootstrapCommand returns the one bootstrap command stored for c1.
func (e *env) bootstrapCommand(t *testing.T) store.Command {
	t.Helper()
	cmds, err := e.st.UnfinishedCommands(context.Background(), "t1", "c1")
	if err != nil || len(cmds) != 1 {
		t.Fatalf("unfinished commands of c1: %d %v", len(cmds), err)
	}
	return cmds[0]
}

// result reports a bootstrap outcome as the collector's stream delivers it.
func (e *env) result(t *testing.T, id string, st wardv1.CommandStatus, output string) {
	t.Helper()
	err := e.engine.HandleResult(context.Background(), "t1", "c1", &wardv1.CommandResult{
		CommandId: id, Status: st, Steps: []*wardv1.StepResult{{Action: "bootstrap_agent",
			Status: st, Changed: true, Output: output}}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAutoEnrollmentSendsASignedBootstrapCommand(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	d := e.discover(t)
	if d.State != store.DeviceEnrolling {
		t.Fatalf("device state %s (%s), want enrolling", d.State, d.StateReason)
	}
	c := e.bootstrapCommand(t)
	if c.Owner != Owner || c.Subject != d.ID || c.Status != store.CommandPending {
		t.Fatalf("command %+v", c)
	}
	if len(e.streams.commands()) != 0 {
		t.Fatal("sent to a collector that is not connected")
	}

	// The collector connects, but without the collector role: nothing goes out.
	e.streams.connect("c1")
	if err := e.engine.AgentConnected(ctx, "t1", "c1", []string{"host"}); err != nil {
		t.Fatal(err)
	}
	if n := len(e.streams.commands()); n != 0 {
		t.Fatalf("sent %d bootstrap commands to a session without the collector role", n)
	}

	// As a collector: the stored command goes out, signed.
	if err := e.engine.AgentConnected(ctx, "t1", "c1",
		[]string{"host", "collector"}); err != nil {
		t.Fatal(err)
	}
	sent := e.streams.commands()
	if len(sent) != 1 {
		t.Fatalf("sent %d commands, want 1", len(sent))
	}
	err := policysig.Verify(e.key.Public(), remediation.CommandPayloadType, policysig.Signed{
		PayloadType: sent[0].GetPayloadType(), Payload: sent[0].GetPayload(),
		Signature: sent[0].GetSignature(), KeyID: sent[0].GetKeyId()})
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	var spec wardv1.CommandSpec
	if err := proto.Unmarshal(sent[0].GetPayload(), &spec); err != nil {
		t.Fatal(err)
	}
	if spec.GetAgentId() != "c1" || spec.GetTenant() != "t1" || len(spec.GetSteps()) != 1 {
		t.Fatalf("spec addressed to %s/%s with %d steps", spec.GetTenant(),
			spec.GetAgentId(), len(spec.GetSteps()))
	}
	step := spec.GetSteps()[0]
	p := step.GetParams()
	if step.GetAction() != "bootstrap_agent" || p["address"] != "10.0.0.11" ||
		p["device_id"] != d.ID || len(p["token"]) < 16 {
		t.Fatalf("step %s params address=%q device=%q token length %d", step.GetAction(),
			p["address"], p["device_id"], len(p["token"]))
	}
	if got := step.GetTimeout().AsDuration(); got != StepTimeout {
		t.Fatalf("step timeout %s", got)
	}
	if got := spec.GetExpiresAt().AsTime().Sub(spec.GetIssuedAt().AsTime()); got !=
		inventory.BootstrapTokenTTL {
		t.Fatalf("command lives %s, want the token's %s", got, inventory.BootstrapTokenTTL)
	}

	// Success: evidence with the collector's account; enrolled once the agent says Hello.
	account := "10.0.0.11: host key ssh-ed25519 SHA256:abc (first use); arch x86_64; " +
		"init fallback; steps connect* detect copy* configure* install start* verify"
	e.result(t, c.ID, wardv1.CommandStatus_COMMAND_STATUS_SUCCEEDED, account)
	rec, ok := e.rec.find(TypeDeviceBootstrapped)
	if !ok || rec.Subject != d.ID || rec.Data.(map[string]any)["evidence"] != account ||
		rec.Actor.ID != "c1" {
		t.Fatalf("bootstrap evidence %+v (found %v)", rec, ok)
	}
	if got := e.device(t, d.ID); got.State != store.DeviceEnrolling {
		t.Fatalf("after success the device is %s, want enrolling until its agent connects",
			got.State)
	}
	if err := e.st.CreateAgent(ctx, store.Agent{ID: "a-new", Tenant: "t1"}); err != nil {
		t.Fatal(err)
	}
	if err := e.inv.AgentConnected(ctx, "t1", "a-new", []string{"10.0.0.11"}); err != nil {
		t.Fatal(err)
	}
	if got := e.device(t, d.ID); got.State != store.DeviceEnrolled {
		t.Fatalf("after the agent's Hello the device is %s, want enrolled", got.State)
	}
}

func TestFailedBootstrapOpensAnIncidentNamingTheStep(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	d := e.discover(t)
	c := e.bootstrapCommand(t)

	e.result(t, c.ID, wardv1.CommandStatus_COMMAND_STATUS_FAILED,
		"bootstrap connect: host key mismatch for 10.0.0.11:22 (known_hosts line 3)")
	got := e.device(t, d.ID)
	if got.State != store.DeviceFailed || !strings.Contains(got.StateReason, "at connect") ||
		!strings.Contains(got.StateReason, "host key mismatch") {
		t.Fatalf("device %s: %s", got.State, got.StateReason)
	}
	inc, err := e.st.UnresolvedIncident(ctx, "t1", "c1", inventory.BootstrapCheck(d.ID))
	if err != nil {
		t.Fatalf("incident: %v", err)
	}
	if !strings.Contains(inc.Observed, "connect") || inc.Kind != inventory.IncidentKindBootstrap {
		t.Fatalf("incident %s kind %s: %s", inc.ID, inc.Kind, inc.Observed)
	}
	if _, ok := e.rec.find(TypeDeviceBootstrapped); ok {
		t.Fatal("a failed bootstrap was recorded as done")
	}

	// A second result (a resend answered as a replay) changes nothing.
	e.result(t, c.ID, wardv1.CommandStatus_COMMAND_STATUS_REFUSED, "")
	if again := e.device(t, d.ID); again.StateReason != got.StateReason {
		t.Fatalf("a later result changed the device: %s", again.StateReason)
	}

	// Approving again retries with a new command.
	if _, err := e.inv.Approve(ctx, "t1", d.ID, "tech"); err != nil {
		t.Fatal(err)
	}
	if retry := e.bootstrapCommand(t); retry.ID == c.ID || retry.Subject != d.ID {
		t.Fatalf("retry command %s for %s", retry.ID, retry.Subject)
	}
}

func TestUnansweredBootstrapExpires(t *testing.T) {
	e := newEnv(t)
	d := e.discover(t)
	e.bootstrapCommand(t)

	e.advance(inventory.BootstrapTokenTTL + time.Minute)
	if err := e.engine.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := e.device(t, d.ID)
	if got.State != store.DeviceFailed || !strings.Contains(got.StateReason, "at request") {
		t.Fatalf("device %s: %s", got.State, got.StateReason)
	}
}

func TestFailure(t *testing.T) {
	st := func(s wardv1.CommandStatus, out string) *wardv1.CommandResult {
		return &wardv1.CommandResult{Status: s, RefusalReason: "expired",
			Steps: []*wardv1.StepResult{{Output: out}}}
	}
	tests := []struct {
		name       string
		r          *wardv1.CommandResult
		step, want string
	}{
		{"expired", nil, "request", "did not answer"},
		{"refused", st(wardv1.CommandStatus_COMMAND_STATUS_REFUSED, ""), "command", "expired"},
		{"step", st(wardv1.CommandStatus_COMMAND_STATUS_FAILED,
			"bootstrap copy: no binary for arch riscv64"), "copy", "no binary for arch riscv64"},
		{"timeout", st(wardv1.CommandStatus_COMMAND_STATUS_TIMED_OUT,
			"timed out after 10m0s; x"), "timeout", "timed out after"},
		{"other", st(wardv1.CommandStatus_COMMAND_STATUS_FAILED,
			"actions: bootstrap_agent runs only on a collector"), "unknown", "only on a collector"},
		{"not collector action error", st(wardv1.CommandStatus_COMMAND_STATUS_FAILED,
			"bootstrap: parameter \"token\" is required"), "unknown", "parameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			step, reason := Failure(tt.r)
			if step != tt.step || !strings.Contains(reason, tt.want) {
				t.Fatalf("Failure = %q, %q; want %q, ...%q...", step, reason, tt.step, tt.want)
			}
		})
	}
}
