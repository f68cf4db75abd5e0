package svcpkg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
)

// system asks the real tools. It is used only when the host root is "/".
type system struct {
	family Family
	log    *slog.Logger
}

var _ Provider = (*system)(nil)

func (s *system) Simulated() bool { return false }

func run(ctx context.Context, name string, args ...string) (string, int, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return strings.TrimSpace(out.String()), ee.ExitCode(), nil
	}
	return strings.TrimSpace(out.String()), 0, err
}

func (s *system) Service(ctx context.Context, name string) (Service, error) {
	active, _, err := run(ctx, "systemctl", "is-active", name)
	if err != nil {
		return Service{}, fmt.Errorf("systemctl is-active %s: %w", name, err)
	}
	enabled, _, err := run(ctx, "systemctl", "is-enabled", name)
	if err != nil {
		return Service{}, fmt.Errorf("systemctl is-enabled %s: %w", name, err)
	}
	exists := !strings.Contains(enabled, "No such file") && enabled != "not-found"
	return Service{
		Exists:  exists,
		Active:  active == "active" || active == "reloading",
		Enabled: enabled == "enabled" || enabled == "enabled-runtime" || enabled == "alias",
	}, nil
}

func (s *system) Control(ctx context.Context, op Op, name string) error {
	args := []string{string(op), name}
	switch op {
	case OpEnable, OpDisable:
		args = []string{string(op), "--now", name}
	case OpRestart, OpReload:
	default:
		return fmt.Errorf("unknown operation %q", op)
	}
	out, code, err := run(ctx, "systemctl", args...)
	if err != nil {
		return fmt.Errorf("systemctl %s: %w", strings.Join(args, " "), err)
	}
	if code != 0 {
		return fmt.Errorf("systemctl %s: exit %d: %s", strings.Join(args, " "), code, out)
	}
	s.log.Info("service operation", "op", string(op), "service", name)
	return nil
}

func (s *system) Package(ctx context.Context, name string) (Package, error) {
	switch s.family {
	case FamilyDeb:
		out, code, err := run(ctx, "dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Version}", name)
		if err != nil {
			return Package{}, fmt.Errorf("dpkg-query %s: %w", name, err)
		}
		f := strings.Fields(out)
		if code != 0 || len(f) < 2 || !strings.HasPrefix(f[0], "ii") {
			return Package{}, nil
		}
		return Package{Installed: true, Version: f[len(f)-1]}, nil
	case FamilyRPM:
		out, code, err := run(ctx, "rpm", "-q", "--qf", "%{EPOCHNUM}:%{VERSION}-%{RELEASE}", name)
		if err != nil {
			return Package{}, fmt.Errorf("rpm -q %s: %w", name, err)
		}
		if code != 0 {
			return Package{}, nil
		}
		return Package{Installed: true, Version: out}, nil
	}
	return Package{}, errors.New("no package manager known for this platform")
}

func (s *system) ApplySecurityUpdates(ctx context.Context) (string, error) {
	var out string
	var code int
	var err error
	switch s.family {
	case FamilyDeb:
		out, code, err = run(ctx, "unattended-upgrade", "-v")
	case FamilyRPM:
		out, code, err = run(ctx, "dnf", "-y", "upgrade", "--security")
	default:
		return "", errors.New("no package manager known for this platform")
	}
	if err == nil && code != 0 {
		err = fmt.Errorf("exit %d", code)
	}
	if err != nil {
		return out, fmt.Errorf("apply security updates: %w", err)
	}
	return out, nil
}

func (s *system) CompareVersions(a, b string) int {
	if s.family == FamilyRPM {
		return CompareRPM(a, b)
	}
	return CompareDebian(a, b)
}
