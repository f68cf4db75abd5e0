package actions

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/wardsec/ward/agent/internal/hostfs"
	"github.com/wardsec/ward/agent/internal/svcpkg"
	"github.com/wardsec/ward/pkg/baseline"
)

func serviceOp(op svcpkg.Op) actionFunc {
	return func(r *Runner, ctx context.Context, p map[string]string, dry bool) (Outcome, error) {
		sim := ""
		if r.cfg.Services.Simulated() {
			sim = " (simulated)"
		}
		name := p["service"]
		if dry {
			return Outcome{Changed: true, Output: fmt.Sprintf("would %s %s%s", op, name, sim)}, nil
		}
		if err := r.cfg.Services.Control(ctx, op, name); err != nil {
			return Outcome{}, err
		}
		return Outcome{Changed: true, Output: fmt.Sprintf("%s %s%s", op, name, sim)}, nil
	}
}

var sysctlKeyRE = regexp.MustCompile(`^[a-z0-9_]+(\.[a-zA-Z0-9_-]+)+$`)

// setSysctl writes the value to /proc/sys (now) and to a file under /etc/sysctl.d
// (persistent; default 99-ward.conf).
func (r *Runner) setSysctl(ctx context.Context, p map[string]string, dry bool) (Outcome, error) {
	key, val := p["key"], p["value"]
	if !sysctlKeyRE.MatchString(key) {
		return Outcome{}, fmt.Errorf("set_sysctl: bad key %q", key)
	}
	file := p["file"]
	if file == "" {
		file = "/etc/sysctl.d/99-ward.conf"
	}
	if !strings.HasPrefix(file, "/etc/sysctl.d/") || strings.Contains(file, "..") {
		return Outcome{}, fmt.Errorf("set_sysctl: file %q is not under /etc/sysctl.d", file)
	}

	proc := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	cur, _ := r.cfg.FS.ReadFile(proc)
	now := strings.TrimSpace(string(cur)) != val
	persist, err := r.ensureKeyValue(ctx, map[string]string{"path": file, "key": key,
		"value": val, "syntax": baseline.SyntaxEquals, "create": "true", "mode": "0644"}, dry)
	if err != nil {
		return Outcome{}, err
	}
	if dry {
		return Outcome{Changed: now || persist.Changed,
			Output: fmt.Sprintf("would set %s = %s now and in %s", key, val, file)}, nil
	}
	if now {
		if err := r.cfg.FS.WriteFile(proc, []byte(val+"\n"), writeAsIs); err != nil {
			return Outcome{}, fmt.Errorf("set_sysctl %s now: %w", key, err)
		}
	}
	return Outcome{Changed: now || persist.Changed,
		Output: fmt.Sprintf("%s = %s (now: %t, %s)", key, val, now, persist.Output)}, nil
}

func (r *Runner) applyUpdates(ctx context.Context, _ map[string]string, dry bool) (Outcome, error) {
	if dry {
		return Outcome{Changed: true, Output: "would install pending security updates"}, nil
	}
	out, err := r.cfg.Services.ApplySecurityUpdates(ctx)
	if err != nil {
		return Outcome{Output: out}, err
	}
	return Outcome{Changed: true, Output: out}, nil
}

var writeAsIs = hostfs.WriteOptions{UID: -1, GID: -1}

var userRE = regexp.MustCompile(`^[a-z_][a-z0-9_.-]*\$?$`)

// lockAccount prefixes the account's password hash in /etc/shadow with "!", as
// `usermod -L` does. root is never locked.
func (r *Runner) lockAccount(_ context.Context, p map[string]string, dry bool) (Outcome, error) {
	user := p["user"]
	if !userRE.MatchString(user) || user == "root" {
		return Outcome{}, fmt.Errorf("lock_account: refusing user %q", user)
	}
	data, err := r.cfg.FS.ReadFile("/etc/shadow")
	if err != nil {
		return Outcome{}, err
	}
	lines := strings.Split(string(data), "\n")
	found := false
	for i, l := range lines {
		f := strings.SplitN(l, ":", 3)
		if len(f) < 3 || f[0] != user {
			continue
		}
		found = true
		if strings.HasPrefix(f[1], "!") {
			return Outcome{Output: user + ": already locked"}, nil
		}
		lines[i] = f[0] + ":!" + f[1] + ":" + f[2]
	}
	if !found {
		return Outcome{}, fmt.Errorf("lock_account: no account %q in /etc/shadow", user)
	}
	if dry {
		return Outcome{Changed: true, Output: "would lock " + user}, nil
	}
	if err := r.cfg.FS.WriteFile("/etc/shadow", []byte(strings.Join(lines, "\n")), writeAsIs); err != nil {
		return Outcome{}, err
	}
	return Outcome{Changed: true, Output: "locked " + user}, nil
}

func (r *Runner) rotateCertificate(ctx context.Context, _ map[string]string, dry bool) (Outcome, error) {
	if r.cfg.RotateCertificate == nil {
		return Outcome{}, errors.New("rotate_certificate: not available on this agent")
	}
	if dry {
		return Outcome{Changed: true, Output: "would renew the agent certificate"}, nil
	}
	if err := r.cfg.RotateCertificate(ctx); err != nil {
		return Outcome{}, fmt.Errorf("rotate_certificate: %w", err)
	}
	return Outcome{Changed: true, Output: "agent certificate renewed and in use"}, nil
}

// shell runs a script with /bin/sh under the host root's environment. Refused unless
// AllowShell.
func (r *Runner) shell(ctx context.Context, p map[string]string, dry bool) (Outcome, error) {
	if !r.cfg.AllowShell {
		return Outcome{}, ErrShellDisabled
	}
	if dry {
		return Outcome{Changed: true, Output: "would run a shell script"}, nil
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", p["script"])
	cmd.Dir = r.cfg.FS.Root()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return Outcome{Changed: true, Output: string(out)}, fmt.Errorf("shell: %w", err)
	}
	return Outcome{Changed: true, Output: string(out)}, nil
}
