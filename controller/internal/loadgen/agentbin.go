package loadgen

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/pki"
)

// measureAgent enrolls one real ward-agent with the controller, runs it for AgentIdle and
// records its resident memory and the size of its binary.
func measureAgent(ctx context.Context, cfg Config, res *Results) error {
	st, err := os.Stat(cfg.AgentBinary)
	if err != nil {
		return fmt.Errorf("measure agent: %w", err)
	}
	res.AgentBinary = st.Size()

	dir, err := os.MkdirTemp("", "ward-loadgen-agent-")
	if err != nil {
		return fmt.Errorf("measure agent: %w", err)
	}
	defer os.RemoveAll(dir)

	secrets, err := tokenSecrets(ctx, cfg.Controller, cfg.Installation, cfg.Tenant, 1, 1)
	if err != nil {
		return err
	}
	tokenFile := filepath.Join(dir, "token")
	if err := pki.WriteFile(tokenFile, []byte(secrets[0]+"\n"), pki.PrivateMode); err != nil {
		return err
	}
	state := filepath.Join(dir, "state")
	enroll := exec.CommandContext(ctx, cfg.AgentBinary, "enroll",
		"--controller", cfg.Controller, "--token-file", tokenFile,
		"--ca-file", filepath.Join(cfg.Installation.Dir, "ca.pem"), "--state-dir", state)
	if out, err := enroll.CombinedOutput(); err != nil {
		return fmt.Errorf("ward-agent enroll: %w: %s", err, out)
	}

	rss, err := runAgent(ctx, cfg, state, filepath.Join(dir, "agent.log"))
	if err != nil {
		return err
	}
	res.AgentRSS = rss
	cfg.Log.Info("ward-agent measured", "rss_kib", rss>>10, "binary_bytes", res.AgentBinary)
	return nil
}

// runAgent runs `ward-agent run` for cfg.AgentIdle, reads its memory, then stops it.
func runAgent(ctx context.Context, cfg Config, state, logPath string) (uint64, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return 0, fmt.Errorf("run ward-agent: %w", err)
	}
	defer logf.Close()

	cmd := exec.Command(cfg.AgentBinary, "run", "--state-dir", state,
		"--controller", cfg.Controller, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("run ward-agent: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer stopProcess(cmd, exited)

	cfg.Log.Info("ward-agent running", logkey.Duration, cfg.AgentIdle)
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case err := <-exited:
		exited <- err
		out, _ := os.ReadFile(logPath)
		return 0, fmt.Errorf("ward-agent exited early: %v: %s", err, out)
	case <-time.After(cfg.AgentIdle):
	}
	return RSS(cmd.Process.Pid)
}

// stopProcess sends SIGTERM, waits up to five seconds for exited, then kills.
func stopProcess(cmd *exec.Cmd, exited chan error) {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil &&
		!errors.Is(err, os.ErrProcessDone) {
		cmd.Process.Kill()
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}
