package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/agent/internal/actions"
	"github.com/wardsec/ward/agent/internal/checks"
	"github.com/wardsec/ward/agent/internal/checks/checkstest"
	"github.com/wardsec/ward/agent/internal/commands"
	"github.com/wardsec/ward/agent/internal/drift"
	"github.com/wardsec/ward/agent/internal/hostfs"
	"github.com/wardsec/ward/agent/internal/logtest"
	"github.com/wardsec/ward/agent/internal/state"
	"github.com/wardsec/ward/agent/internal/svcpkg"
	"github.com/wardsec/ward/pkg/baseline"
	"github.com/wardsec/ward/pkg/pki"
	"github.com/wardsec/ward/pkg/policysig"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// withVersion returns the shipped document with another version.
func withVersion(t *testing.T, v string) []byte {
	t.Helper()
	doc := baseline.ShippedDocument()
	out := bytes.Replace(doc, []byte("\nversion: 1.0.0\n"), []byte("\nversion: "+v+"\n"), 1)
	if bytes.Equal(out, doc) {
		t.Fatal("shipped document has no version 1.0.0 line")
	}
	return out
}

func TestBaselineUpdatesApplyPersistAndRefuseMistakes(t *testing.T) {
	dir := state.Dir(t.TempDir())
	bs, err := loadBaselines(dir, logtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	if bs.Current().ID != "hipaa-v1" || bs.Version() != "1.0.0" {
		t.Fatalf("without an update the agent applies %s %s, want the shipped hipaa-v1",
			bs.Current().ID, bs.Version())
	}

	good := withVersion(t, "1.0.1")
	refused := []struct {
		name string
		spec *wardv1.BaselineSpec
		want string
	}{
		{"unknown field", &wardv1.BaselineSpec{BaselineId: "hipaa-v1", Version: "1.0.2",
			Document: append(withVersion(t, "1.0.2"), []byte("colour: blue\n")...)},
			"colour"},
		{"bad regex", &wardv1.BaselineSpec{BaselineId: "hipaa-v1", Version: "1.0.2",
			Document: []byte(strings.Replace(string(withVersion(t, "1.0.2")),
				"kind: key_value,", "kind: regex_match, pattern: \"(\",", 1))}, "hipaa-v1.yaml:"},
		{"version mismatch", &wardv1.BaselineSpec{BaselineId: "hipaa-v1", Version: "9.9.9",
			Document: good}, "update names"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			changed, err := bs.Apply(tt.spec)
			if err == nil || changed || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Apply = %v, %v; want a refusal mentioning %q", changed, err, tt.want)
			}
			if bs.Version() != "1.0.0" {
				t.Fatalf("a refused update replaced the baseline: now %s", bs.Version())
			}
		})
	}
	if _, err := os.Stat(filepath.Join(string(dir), BaselineFile)); err == nil {
		t.Fatal("a refused update was persisted")
	}

	changed, err := bs.Apply(&wardv1.BaselineSpec{BaselineId: "hipaa-v1", Version: "1.0.1",
		Document: good})
	if err != nil || !changed || bs.Version() != "1.0.1" {
		t.Fatalf("Apply(1.0.1) = %v, %v; version %s", changed, err, bs.Version())
	}
	again, err := loadBaselines(dir, logtest.New(t))
	if err != nil || again.Version() != "1.0.1" {
		t.Fatalf("after a restart the agent applies %s (%v), want the persisted 1.0.1",
			again.Version(), err)
	}
}

// recorder is a sink that keeps every message in order.
type recorder struct {
	mu   sync.Mutex
	msgs []*wardv1.ConnectRequest
}

func (r *recorder) Enqueue(req *wardv1.ConnectRequest) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, req)
	return uint64(len(r.msgs)), nil
}

func TestCommandResultThenVerification(t *testing.T) {
	root := checkstest.Debian(t)
	sshd := filepath.Join(root, "etc/ssh/sshd_config")
	data, _ := os.ReadFile(sshd)
	data = bytes.Replace(data, []byte("PasswordAuthentication no\nKbd"),
		[]byte("PasswordAuthentication yes\nKbd"), 1)
	if err := os.WriteFile(sshd, data, 0o600); err != nil {
		t.Fatal(err)
	}

	log := logtest.New(t)
	fsys, _ := hostfs.New(root)
	svc := svcpkg.New(fsys, svcpkg.FamilyDeb, log)
	b, _ := baseline.Shipped()
	rec := &recorder{}
	loop, err := drift.New(drift.Config{
		Evaluator: checks.New(checks.Config{FS: fsys, Services: svc, Log: log}),
		Baseline:  func() *baseline.Baseline { return b }, Sink: rec,
		StatePath: filepath.Join(t.TempDir(), drift.StateFile), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := pki.NewKey()
	cmds := newCommandRunner(log)
	exec, err := commands.New(commands.Config{AgentID: "a1", Tenant: "clinic",
		PolicyKey:  &key.PublicKey,
		Runner:     actions.New(actions.Config{FS: fsys, Services: svc, Log: log}),
		LedgerPath: filepath.Join(t.TempDir(), CommandLedgerFile), Verify: cmds.deferVerify,
		Log: log})
	if err != nil {
		t.Fatal(err)
	}
	cmds.exec, cmds.drift, cmds.sink = exec, loop, rec

	spec := &wardv1.CommandSpec{CommandId: "cmd-1", AgentId: "a1", Tenant: "clinic",
		ExpiresAt: timestamppb.New(time.Now().Add(time.Hour)), RunbookId: "RB-SSH-001",
		VerifyChecks: []string{"SSH-002"}, Steps: []*wardv1.CommandStep{
			{Action: "ensure_key_value", Timeout: durationpb.New(10 * time.Second),
				Params: map[string]string{"path": "/etc/ssh/sshd_config",
					"key": "PasswordAuthentication", "value": "no", "syntax": "sshd"}},
			{Action: "reload_service", Params: map[string]string{"service": "sshd"}},
		}}
	payload, _ := proto.Marshal(spec)
	sig, _ := ecdsa.SignASN1(rand.Reader, key,
		policysig.Digest("ward.v1.CommandSpec", payload))
	kid, _ := policysig.KeyID(&key.PublicKey)

	cmds.run(context.Background(), &wardv1.SignedPayload{PayloadType: "ward.v1.CommandSpec",
		Payload: payload, Signature: sig, KeyId: kid})

	if len(rec.msgs) != 2 {
		t.Fatalf("got %d messages, want the result then the verification", len(rec.msgs))
	}
	res := rec.msgs[0].GetCommandResult()
	if res.GetStatus() != wardv1.CommandStatus_COMMAND_STATUS_SUCCEEDED {
		t.Fatalf("first message %v, want a succeeded command result", rec.msgs[0])
	}
	report := rec.msgs[1].GetDriftReport()
	if report.GetCommandId() != "cmd-1" || len(report.GetResults()) != 1 ||
		report.GetResults()[0].GetState() != wardv1.CheckState_CHECK_STATE_PASS {
		t.Fatalf("second message %v, want SSH-002 passing for cmd-1", rec.msgs[1])
	}
}
