package commands

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/agent/internal/actions"
	"github.com/wardsec/ward/agent/internal/checks/checkstest"
	"github.com/wardsec/ward/agent/internal/hostfs"
	"github.com/wardsec/ward/agent/internal/svcpkg"
	"github.com/wardsec/ward/pkg/policysig"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	root     string
	key      *ecdsa.PrivateKey
	ledger   string
	verified []string
	x        *Executor
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := &fixture{root: checkstest.Debian(t), key: key,
		ledger: filepath.Join(t.TempDir(), "executed-commands")}
	f.open(t)
	return f
}

func (f *fixture) open(t *testing.T) {
	t.Helper()
	fsys, _ := hostfs.New(f.root)
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	x, err := New(Config{AgentID: "a1", Tenant: "clinic", PolicyKey: &f.key.PublicKey,
		Runner:     actions.New(actions.Config{FS: fsys, Services: svcpkg.New(fsys, svcpkg.FamilyDeb, log), Log: log}),
		LedgerPath: f.ledger, Now: func() time.Time { return now }, Log: log,
		Verify: func(_ context.Context, id string, checks []string) {
			f.verified = append(f.verified, id+":"+strings.Join(checks, ","))
		}})
	if err != nil {
		t.Fatal(err)
	}
	f.x = x
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func spec(id string) *wardv1.CommandSpec {
	return &wardv1.CommandSpec{CommandId: id, AgentId: "a1", Tenant: "clinic",
		IssuedAt: timestamppb.New(now.Add(-time.Minute)), ExpiresAt: timestamppb.New(now.Add(time.Hour)),
		RunbookId: "RB-SSH-001", VerifyChecks: []string{"SSH-002"},
		Steps: []*wardv1.CommandStep{
			{Action: "ensure_key_value", Timeout: durationpb.New(10 * time.Second), Params: map[string]string{
				"path": "/etc/ssh/sshd_config", "key": "PasswordAuthentication", "value": "no", "syntax": "sshd"}},
			{Action: "reload_service", Params: map[string]string{"service": "sshd"}},
		}}
}

func sign(t *testing.T, key *ecdsa.PrivateKey, s *wardv1.CommandSpec) *wardv1.SignedPayload {
	t.Helper()
	payload, _ := proto.Marshal(s)
	typ := string(proto.MessageName(s))
	sig, err := ecdsa.SignASN1(rand.Reader, key, policysig.Digest(typ, payload))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := policysig.KeyID(&key.PublicKey)
	return &wardv1.SignedPayload{PayloadType: typ, Payload: payload, Signature: sig, KeyId: id}
}

func setPasswordAuth(t *testing.T, root string) {
	checkstest.Write(t, root, map[string]checkstest.File{"/etc/ssh/sshd_config": {Mode: 0o600,
		Content: "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication yes\n"}})
}

func TestRunsAVerifiedCommand(t *testing.T) {
	f := newFixture(t)
	setPasswordAuth(t, f.root)

	res := f.x.Handle(context.Background(), sign(t, f.key, spec("c1")))
	if res.GetStatus() != wardv1.CommandStatus_COMMAND_STATUS_SUCCEEDED || len(res.GetSteps()) != 2 ||
		!res.GetSteps()[0].GetChanged() || !strings.Contains(res.GetSteps()[1].GetOutput(), "simulated") {
		t.Fatalf("result = %v", res)
	}
	data, _ := os.ReadFile(filepath.Join(f.root, "etc/ssh/sshd_config"))
	if !strings.Contains(string(data), "PasswordAuthentication no") {
		t.Errorf("sshd_config = %q", data)
	}
	if len(f.verified) != 1 || f.verified[0] != "c1:SSH-002" {
		t.Errorf("verified = %v", f.verified)
	}
}

// Refused commands are reported with a reason and leave the host exactly as it was.
func TestRefusals(t *testing.T) {
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tests := []struct {
		name    string
		payload func(t *testing.T, f *fixture) *wardv1.SignedPayload
		reason  string
	}{
		{"bad signature", func(t *testing.T, f *fixture) *wardv1.SignedPayload {
			p := sign(t, f.key, spec("c2"))
			p.Payload = append(p.Payload, 0x50, 0x01) // extra field: dry_run... tampered
			return p
		}, "signature does not verify"},
		{"unknown key", func(t *testing.T, f *fixture) *wardv1.SignedPayload {
			return sign(t, other, spec("c2"))
		}, "signature does not verify"},
		{"another agent", func(t *testing.T, f *fixture) *wardv1.SignedPayload {
			s := spec("c2")
			s.AgentId = "a2"
			return sign(t, f.key, s)
		}, "addressed to agent"},
		{"another tenant", func(t *testing.T, f *fixture) *wardv1.SignedPayload {
			s := spec("c2")
			s.Tenant = "other"
			return sign(t, f.key, s)
		}, "addressed to agent"},
		{"expired", func(t *testing.T, f *fixture) *wardv1.SignedPayload {
			s := spec("c2")
			s.ExpiresAt = timestamppb.New(now.Add(-time.Second))
			return sign(t, f.key, s)
		}, "expired"},
		{"unknown action", func(t *testing.T, f *fixture) *wardv1.SignedPayload {
			s := spec("c2")
			s.Steps = append(s.Steps, &wardv1.CommandStep{Action: "rm_rf", Params: map[string]string{"path": "/"}})
			return sign(t, f.key, s)
		}, "unknown action"},
		{"shell", func(t *testing.T, f *fixture) *wardv1.SignedPayload {
			s := spec("c2")
			s.Steps = []*wardv1.CommandStep{{Action: "shell", Params: map[string]string{"script": "echo PasswordAuthentication no > etc/ssh/sshd_config"}}}
			return sign(t, f.key, s)
		}, ""},
		{"replayed", func(t *testing.T, f *fixture) *wardv1.SignedPayload {
			p := sign(t, f.key, spec("c2"))
			if r := f.x.Handle(context.Background(), p); r.GetStatus() != wardv1.CommandStatus_COMMAND_STATUS_SUCCEEDED {
				t.Fatalf("first run = %v", r)
			}
			setPasswordAuth(t, f.root) // drift again, then replay after an agent restart
			f.open(t)
			return p
		}, "already executed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			setPasswordAuth(t, f.root)
			p := tt.payload(t, f)
			before := snapshot(t, f.root)

			res := f.x.Handle(context.Background(), p)
			if tt.name == "shell" {
				if res.GetStatus() != wardv1.CommandStatus_COMMAND_STATUS_FAILED ||
					!strings.Contains(res.GetSteps()[0].GetOutput(), "disabled") {
					t.Errorf("shell result = %v", res)
				}
			} else if res.GetStatus() != wardv1.CommandStatus_COMMAND_STATUS_REFUSED ||
				!strings.Contains(res.GetRefusalReason(), tt.reason) {
				t.Errorf("result = %v, want refused with %q", res, tt.reason)
			}
			if after := snapshot(t, f.root); after != before {
				t.Error("the host changed")
			}
		})
	}
}

func TestDryRunChangesNothingAndMayRunAgain(t *testing.T) {
	f := newFixture(t)
	setPasswordAuth(t, f.root)
	s := spec("c3")
	s.DryRun = true
	before := snapshot(t, f.root)
	res := f.x.Handle(context.Background(), sign(t, f.key, s))
	if res.GetStatus() != wardv1.CommandStatus_COMMAND_STATUS_DRY_RUN || !res.GetSteps()[0].GetChanged() ||
		!strings.HasPrefix(res.GetSteps()[0].GetOutput(), "would ") {
		t.Fatalf("dry run = %v", res)
	}
	if snapshot(t, f.root) != before || len(f.verified) != 0 {
		t.Error("dry run changed the host or verified")
	}
	s.DryRun = false
	if res := f.x.Handle(context.Background(), sign(t, f.key, s)); res.GetStatus() != wardv1.CommandStatus_COMMAND_STATUS_SUCCEEDED {
		t.Errorf("real run after dry run = %v", res)
	}
}

func TestStepTimeout(t *testing.T) {
	f := newFixture(t)
	fsys, _ := hostfs.New(f.root)
	log := slog.New(slog.DiscardHandler)
	x, _ := New(Config{AgentID: "a1", Tenant: "clinic", PolicyKey: &f.key.PublicKey, LedgerPath: f.ledger + "2",
		Runner: actions.New(actions.Config{FS: fsys, Services: svcpkg.New(fsys, svcpkg.FamilyDeb, log), Log: log, AllowShell: true}),
		Now:    func() time.Time { return now }, Log: log})
	s := spec("c4")
	s.Steps = []*wardv1.CommandStep{{Action: "shell", Timeout: durationpb.New(200 * time.Millisecond),
		Params: map[string]string{"script": "sleep 5"}}}
	start := time.Now()
	res := x.Handle(context.Background(), sign(t, f.key, s))
	if res.GetStatus() != wardv1.CommandStatus_COMMAND_STATUS_TIMED_OUT || time.Since(start) > 3*time.Second {
		t.Errorf("result = %v after %v", res, time.Since(start))
	}
}

func snapshot(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		fi, _ := os.Lstat(p)
		fmt.Fprintf(h, "%s %v\n", p, fi.Mode())
		if d.Type().IsRegular() {
			data, _ := os.ReadFile(p)
			h.Write(data)
		}
		return nil
	})
	return fmt.Sprintf("%x", h.Sum(nil))
}
