package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/agent/internal/state"
	"github.com/wardsec/ward/agent/internal/testca"
	"github.com/wardsec/ward/pkg/pki"
)

func TestCommandLine(t *testing.T) {
	empty := t.TempDir()
	tests := []struct {
		name       string
		args       []string
		wantErr    error // errUsage, nil, or any error (errAny)
		wantStdout string
		wantStderr string
	}{
		{"no command", nil, errUsage, "", "usage:"},
		{"unknown command", []string{"frobnicate"}, errUsage, "", `unknown command "frobnicate"`},
		{"version", []string{"version"}, nil, "ward-agent ", ""},
		{"run without state dir", []string{"run"}, errUsage, "", "--state-dir is required"},
		{"run with stray args", []string{"run", "--state-dir", empty, "extra"}, errUsage, "",
			"unexpected arguments"},
		{"run not enrolled", []string{"run", "--state-dir", empty}, errAny, "", ""},
		{"bad log level", []string{"run", "--state-dir", empty, "--log-level", "loud"},
			errAny, "", ""},
		{"enroll missing flags", []string{"enroll", "--controller", "localhost:7443"},
			errUsage, "", "is required"},
		{"enroll bad role", []string{"enroll", "--controller", "h:1", "--token-file", "t",
			"--ca-file", "c", "--state-dir", empty, "--role", "router"}, errUsage, "",
			"--role must be host or collector"},
		{"run bad role", []string{"run", "--state-dir", empty, "--role", "scanner"}, errUsage,
			"", `--role must be host or collector, not "scanner"`},
		{"run collector not enrolled", []string{"run", "--state-dir", empty, "--role",
			"collector"}, errAny, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("run = %v", err)
			case tt.wantErr == errAny && (err == nil || errors.Is(err, errUsage)):
				t.Fatalf("run = %v, want a non-usage error", err)
			case tt.wantErr == errUsage && !errors.Is(err, errUsage):
				t.Fatalf("run = %v, want a usage error", err)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestNotEnrolledMessage(t *testing.T) {
	dir := t.TempDir()
	err := run(context.Background(), []string{"run", "--state-dir", dir}, &bytes.Buffer{},
		&bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "run ward-agent enroll first") {
		t.Fatalf("run on an empty state dir = %v", err)
	}
}

// buildAgent builds the real binary once per test that needs it.
func buildAgent(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "ward-agent")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func TestEnrollFailureExitsNonZeroWithoutEchoingTheToken(t *testing.T) {
	bin := buildAgent(t)
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("wtk_very-secret-token\n"), 0o600)
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, []byte("not a pem"), 0o644)

	cmd := exec.Command(bin, "enroll", "--controller", "127.0.0.1:1", "--token-file", token,
		"--ca-file", ca, "--state-dir", filepath.Join(dir, "state"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("enroll exited with %v, want status 1", err)
	}
	if strings.Contains(stderr.String(), "very-secret") {
		t.Errorf("stderr echoes the token: %s", stderr.String())
	}
}

func TestRunStopsGracefullyOnSIGTERM(t *testing.T) {
	bin := buildAgent(t)
	dir := enrolledStateDir(t, "127.0.0.1:1") // nobody listens: the agent keeps retrying

	cmd := exec.Command(bin, "run", "--state-dir", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatal("run did not stop within 5 s of SIGTERM")
	}

	logs := stderr.String()
	for _, want := range []string{`"msg":"agent starting"`, `"msg":"agent stopped"`,
		`"level":"WARN","msg":"cannot reach controller; reconnecting"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("JSON logs lack %s:\n%s", want, logs)
		}
	}
}

// enrolledStateDir writes a state directory as enrollment would, for controller addr.
func enrolledStateDir(t *testing.T, addr string) string {
	t.Helper()
	ca := testca.New(t, "msp.example")
	info := state.Info{AgentID: "a1", Tenant: "clinic-a", TrustDomain: "msp.example",
		Controller: addr, Roles: []string{"host"}, EnrolledAt: time.Now()}
	key, _ := pki.NewKey()
	der, err := ca.Issue(&key.PublicKey, info.ID(), time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	policy, _ := pki.NewKey()
	policyDER, _ := x509.MarshalPKIXPublicKey(&policy.PublicKey)

	dir := filepath.Join(t.TempDir(), "state")
	err = state.Dir(dir).Save(state.Enrollment{Info: info, Key: key, Chain: [][]byte{der},
		CAs: [][]byte{ca.Cert.Raw}, PolicyKey: policyDER})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
