package checks

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardsec/ward/agent/internal/checks/checkstest"
	"github.com/wardsec/ward/agent/internal/hostfs"
	"github.com/wardsec/ward/agent/internal/svcpkg"
	"github.com/wardsec/ward/pkg/baseline"
)

func evaluator(t testing.TB, root string) *Evaluator {
	t.Helper()
	fsys, err := hostfs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	platform, family := DetectPlatform(fsys)
	return New(Config{FS: fsys, Services: svcpkg.New(fsys, family, slog.New(slog.DiscardHandler)),
		Platform: platform, Log: slog.New(slog.DiscardHandler)})
}

func shipped(t testing.TB) *baseline.Baseline {
	t.Helper()
	b, err := baseline.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// On a compliant Debian tree every hipaa-v1 check for Debian passes and the others are
// not applicable.
func TestCompliantDebianPassesHIPAA(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the prepared tree's files must be owned by root")
	}
	e := evaluator(t, checkstest.Debian(t))
	b := shipped(t)
	if e.Platform() != baseline.PlatformDebian {
		t.Fatalf("platform = %q", e.Platform())
	}
	for _, r := range e.Baseline(context.Background(), b) {
		c := b.Check(r.CheckID)
		want := Pass
		if !c.AppliesTo(baseline.PlatformDebian) {
			want = NotApplicable
		}
		if r.State != want {
			t.Errorf("%s: %v (%s; observed %q), want %v", r.CheckID, r.State, r.Message,
				r.Observed, want)
		}
	}
}

// Each test kind passes, fails and errors on prepared trees: the compliant Debian tree
// with one change.
func TestKinds(t *testing.T) {
	tests := []struct {
		check  string
		change map[string]checkstest.File // files to overwrite; Mode 0o1 means delete
		want   State
		obs    string // substring of Observed or Message
	}{
		// key_value with sshd semantics.
		{"SSH-002", nil, Pass, "PasswordAuthentication no"},
		{"SSH-002", map[string]checkstest.File{"/etc/ssh/sshd_config.d/00-first.conf": {
			Content: "PasswordAuthentication yes\n"}}, Fail, "00-first.conf:1"},
		{"SSH-002", map[string]checkstest.File{"/etc/ssh/sshd_config": {Mode: 0o600,
			Content: "Match all\nPasswordAuthentication no\n"}}, Fail, "default; not set"},
		{"SSH-002", map[string]checkstest.File{"/etc/ssh/sshd_config": {Mode: 0o000}}, Error, "permission"},
		{"SSH-004", map[string]checkstest.File{"/etc/ssh/sshd_config.d/50-ward.conf": {
			Content: "ClientAliveInterval 3600\n"}}, Fail, "above 900"},
		// key_value, last wins.
		{"ACCT-005", map[string]checkstest.File{"/etc/login.defs": {
			Content: "PASS_MAX_DAYS 90\nPASS_MAX_DAYS 99999\n"}}, Fail, "above 365"},
		// file_mode.
		{"PERM-001", map[string]checkstest.File{"/etc/shadow": {Mode: 0o644, Content: "root:x:1::::::\n"}}, Fail, "exceeds 0640"},
		{"PERM-001", map[string]checkstest.File{"/etc/shadow": {Mode: 1}}, Error, "does not exist"},
		// regex_match / regex_no_match / any.
		{"AUD-003", map[string]checkstest.File{"/etc/audit/rules.d/50-ward-identity.rules": {
			Content: "-w /etc/shadow -p wa\n"}}, Fail, "no match"},
		{"TLS-001", map[string]checkstest.File{"/etc/ssl/openssl.cnf": {
			Content: "MinProtocol = TLSv1\n"}}, Fail, "openssl.cnf:1"},
		{"ACCT-007", map[string]checkstest.File{"/etc/profile.d/ward-tmout.sh": {
			Content: "TMOUT=3600\n"}}, Fail, "no match"},
		// file_exists (any of).
		{"BAK-001", map[string]checkstest.File{"/etc/ward/backup.marker": {Mode: 1}}, Fail, "absent"},
		// sysctl from /proc/sys and, when absent, from the persistent files.
		{"NET-006", map[string]checkstest.File{"/proc/sys/net/ipv4/ip_forward": {Content: "1\n"}}, Fail, "ip_forward = 1"},
		{"NET-006", map[string]checkstest.File{"/proc/sys/net/ipv4/ip_forward": {Mode: 1},
			"/etc/sysctl.d/99-x.conf": {Content: "net.ipv4.ip_forward = 0\n"}}, Pass, "99-x.conf:1"},
		{"NET-006", map[string]checkstest.File{"/proc/sys/net/ipv4/ip_forward": {Mode: 1}}, Error, "not configured"},
		// module_disabled.
		{"KMOD-001", map[string]checkstest.File{"/etc/modprobe.d/ward.conf": {Content: "install dccp /bin/false\n"}}, Fail, "loadable"},
		{"KMOD-001", map[string]checkstest.File{"/proc/modules": {Content: "usb_storage 1 0 - Live 0x0\n"}}, Fail, "loaded"},
		// mount_options.
		{"MNT-001", map[string]checkstest.File{"/proc/mounts": {Content: "tmpfs /tmp tmpfs rw,nosuid 0 0\n"}}, Fail, "nodev,noexec"},
		{"MNT-001", map[string]checkstest.File{"/proc/mounts": {Mode: 1}}, Error, "mounts"},
		// not_listening.
		{"NET-001", map[string]checkstest.File{"/proc/net/tcp6": {Content: "header\n 0: 00000000000000000000000000000000:0017 00000000000000000000000000000000:0000 0A 0 0 0 0 0\n"}}, Fail, "23/tcp"},
		{"NET-001", map[string]checkstest.File{"/proc/net/tcp": {Mode: 1}, "/proc/net/tcp6": {Mode: 1}}, Error, "missing"},
		// users.
		{"ACCT-001", map[string]checkstest.File{"/etc/shadow": {Mode: 0o640, Content: "root:$6$x:1::::::\nbob::1::::::\n"}}, Fail, "bob"},
		{"ACCT-002", map[string]checkstest.File{"/etc/passwd": {Content: "root:x:0:0::/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\n"}}, Fail, "toor"},
		{"ACCT-003", map[string]checkstest.File{"/etc/passwd": {Content: "root:x:0:0::/:/bin/sh\na:x:5:5::/:/bin/sh\nb:x:5:5::/:/bin/sh\n"}}, Fail, "a=b"},
		{"ACCT-006", map[string]checkstest.File{"/etc/passwd": {Content: "root:x:0:0::/:/bin/sh\nfrontdesk:x:1002:1002::/home/fd:/bin/bash\n"}}, Fail, "frontdesk"},
		{"ACCT-001", map[string]checkstest.File{"/etc/shadow": {Mode: 1}}, Error, "shadow"},
		// command (allowlisted, resolved under the root).
		{"UPD-004", map[string]checkstest.File{"/usr/lib/update-notifier/apt-check": {Mode: 0o755,
			Content: "#!/bin/sh\necho '3 updates can be applied immediately.'\necho '2 of these updates are standard security updates.'\n"}}, Fail, "3 updates"},
		{"UPD-004", map[string]checkstest.File{"/usr/lib/update-notifier/apt-check": {Mode: 1}}, Error, "not installed"},
	}
	b := shipped(t)
	for _, tt := range tests {
		t.Run(tt.check, func(t *testing.T) {
			if os.Geteuid() == 0 && tt.want == Error && strings.Contains(tt.obs, "permission") {
				t.Skip("root reads mode 0000 files")
			}
			root := checkstest.Debian(t)
			apply(t, root, tt.change)
			r := evaluator(t, root).Check(context.Background(), b.Check(tt.check))
			if r.State != tt.want || !strings.Contains(r.Observed+" "+r.Message, tt.obs) {
				t.Errorf("%s = %v observed %q message %q; want %v containing %q",
					tt.check, r.State, r.Observed, r.Message, tt.want, tt.obs)
			}
		})
	}
}

func apply(t *testing.T, root string, change map[string]checkstest.File) {
	t.Helper()
	for p, f := range change {
		if f.Mode == 1 {
			if err := os.Remove(filepath.Join(root, p)); err != nil {
				t.Fatal(err)
			}
			delete(change, p)
		}
	}
	checkstest.Write(t, root, change)
}

// Service and package kinds pass, fail and error through the simulated provider, and say so.
func TestServicesAndPackages(t *testing.T) {
	root := checkstest.Debian(t)
	e := evaluator(t, root)
	b := shipped(t)
	ctx := context.Background()

	if r := e.Check(ctx, b.Check("AUD-002")); r.State != Pass || !strings.Contains(r.Observed, "simulated") {
		t.Errorf("AUD-002 = %+v", r)
	}
	fsys, _ := hostfs.New(root)
	st, _ := svcpkg.LoadSim(fsys)
	st.Services["auditd"] = svcpkg.SimService{Active: true}
	st.Packages["sudo"] = "1.9.5p1-1"
	delete(st.Packages, "unattended-upgrades")
	st.Packages["telnetd"] = "0.17-44"
	if err := svcpkg.SaveSim(fsys, st); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{
		"AUD-002":  "auditd is not enabled",
		"ACCT-008": "older than 1.9.5p2",
		"UPD-001":  "not installed",
		"NET-004":  "telnetd is installed",
	} {
		r := e.Check(ctx, b.Check(id))
		if r.State != Fail || !strings.Contains(r.Observed+r.Message, want) ||
			!strings.Contains(r.Message, "simulated") {
			t.Errorf("%s = %+v, want fail with %q, marked simulated", id, r, want)
		}
	}

	checkstest.Write(t, root, map[string]checkstest.File{svcpkg.SimStateFile: {Content: "{"}})
	if r := e.Check(ctx, b.Check("AUD-002")); r.State != Error {
		t.Errorf("AUD-002 with broken state = %+v, want error", r)
	}
}

func BenchmarkHIPAA(b *testing.B) {
	root := checkstest.Debian(b)
	e := evaluator(b, root)
	bl := shipped(b)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		e.Baseline(ctx, bl)
	}
}
