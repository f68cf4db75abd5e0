package actions

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wardsec/ward/agent/internal/checks"
	"github.com/wardsec/ward/agent/internal/checks/checkstest"
	"github.com/wardsec/ward/agent/internal/hostfs"
	"github.com/wardsec/ward/agent/internal/svcpkg"
	"github.com/wardsec/ward/pkg/baseline"
	"github.com/wardsec/ward/pkg/runbook"
)

type F = checkstest.File

// breakage makes the runbook's checks fail on a compliant Debian tree. Mode 1 deletes.
var breakage = map[string]struct {
	files    map[string]F
	services map[string]svcpkg.SimService
	packages map[string]string
	rhel     bool
	verify   []string // when not every answered check can pass on the tree
}{
	"RB-SSH-001": {files: map[string]F{"/etc/ssh/sshd_config.d/00-first.conf": {Content: "PasswordAuthentication yes\n"}}},
	"RB-SSH-002": {files: map[string]F{"/etc/ssh/sshd_config": {Mode: 0o600, Content: "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\n"}}},
	"RB-SSH-003": {files: map[string]F{"/etc/ssh/sshd_config.d/00-x.conf": {Content: "PermitEmptyPasswords yes\n"}}},
	"RB-SSH-004": {files: map[string]F{"/etc/ssh/sshd_config.d/50-ward.conf": {Content: "ClientAliveInterval 0\nMaxAuthTries 6\nX11Forwarding yes\nHostbasedAuthentication yes\n"}}},
	"RB-SSH-005": {files: map[string]F{"/etc/ssh/sshd_config.d/50-ward.conf": {Content: "Ciphers aes128-cbc,3des-cbc\nMACs hmac-md5\n"}}},
	"RB-PERM-001": {files: map[string]F{"/etc/shadow": {Mode: 0o666, Content: "root:$6$x:1::::::\n"},
		"/etc/passwd": {Mode: 0o666, Content: "root:x:0:0::/root:/bin/bash\n"}, "/etc/sudoers": {Mode: 0o640},
		"/etc/gshadow": {Mode: 0o644}, "/etc/group": {Mode: 0o666},
		"/etc/ssh/sshd_config":      {Mode: 0o644, Content: "PasswordAuthentication no\n"},
		"/etc/ssh/ssh_host_rsa_key": {Mode: 0o644}}},
	"RB-AUD-001":  {services: map[string]svcpkg.SimService{"auditd": {}}},
	"RB-AUD-002":  {files: map[string]F{"/etc/audit/rules.d/50-ward-identity.rules": {Mode: 1}}},
	"RB-AUD-003":  {files: map[string]F{"/etc/audit/auditd.conf": {Content: "max_log_file_action = ROTATE\n"}}},
	"RB-LOG-001":  {files: map[string]F{"/etc/systemd/journald.conf": {Content: "[Journal]\nStorage=volatile\n"}}, services: map[string]svcpkg.SimService{"rsyslog": {}}},
	"RB-LOG-002":  {files: map[string]F{"/etc/logrotate.conf": {Content: "weekly\nrotate 4\n"}}},
	"RB-TIME-001": {services: map[string]svcpkg.SimService{"systemd-timesyncd": {}}},
	"RB-TIME-002": {rhel: true, services: map[string]svcpkg.SimService{"chronyd": {}}},
	"RB-UPD-001":  {files: map[string]F{"/etc/apt/apt.conf.d/20auto-upgrades": {Mode: 1}}},
	"RB-UPD-002":  {rhel: true, services: map[string]svcpkg.SimService{"dnf-automatic-install.timer": {}}},
	"RB-UPD-003":  {packages: map[string]string{"sudo": "1.9.5p1-1"}, verify: []string{"ACCT-008"}},
	"RB-SYSCTL-001": {files: map[string]F{"/proc/sys/net/ipv4/ip_forward": {Content: "1\n"},
		"/proc/sys/net/ipv4/conf/all/accept_redirects": {Content: "1\n"}, "/proc/sys/net/ipv4/conf/all/accept_source_route": {Content: "1\n"},
		"/proc/sys/net/ipv4/tcp_syncookies": {Content: "0\n"}, "/proc/sys/kernel/randomize_va_space": {Content: "0\n"}}},
	"RB-KMOD-001": {files: map[string]F{"/etc/modprobe.d/ward.conf": {Content: "install dccp /bin/false\n"}}},
	"RB-KMOD-002": {files: map[string]F{"/etc/modprobe.d/ward.conf": {Content: "install usb-storage /bin/false\n"}}},
	"RB-SESS-001": {files: map[string]F{"/etc/profile.d/ward-tmout.sh": {Mode: 1}}},
	"RB-ACCT-001": {files: map[string]F{"/etc/shadow": {Mode: 0o640, Content: "root:$6$x:1::::::\nbob::19000:0:365:7:::\n"}}},
	"RB-ACCT-002": {files: map[string]F{"/etc/login.defs": {Content: "PASS_MAX_DAYS 99999\n"}}},
	"RB-CERT-001": {},
}

// Every shipped runbook, applied to a tree where its checks fail, makes them pass; a dry
// run before it changes nothing.
func TestShippedRunbooksFixTheirChecks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to set owners in the prepared tree")
	}
	set, err := runbook.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	b, err := baseline.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range set.IDs() {
		t.Run(id, func(t *testing.T) {
			br, ok := breakage[id]
			if !ok {
				t.Fatalf("no breakage for %s: add one", id)
			}
			root, fsys := prepare(t, br.files, br.services, br.packages, br.rhel)
			rotated := 0
			runner := New(Config{FS: fsys, Services: svcpkg.New(fsys, svcpkg.FamilyDeb, discard()),
				Baseline: func() *baseline.Baseline { return b }, Log: discard(),
				RotateCertificate: func(context.Context) error { rotated++; return nil }})
			ev := checks.New(checks.Config{FS: fsys, Services: svcpkg.New(fsys, svcpkg.FamilyDeb, discard()), Log: discard()})
			verify := br.verify
			if verify == nil {
				verify = set[id].VerifyChecks()
			}
			for _, cid := range verify {
				if r := ev.Check(context.Background(), b.Check(cid)); r.State != checks.Fail {
					t.Fatalf("before: %s = %v %s, want fail", cid, r.State, r.Message)
				}
			}

			steps, err := set[id].Bind(map[string]string{"user": "bob"})
			if err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, root)
			run(t, runner, steps, true)
			if after := snapshot(t, root); after != before {
				t.Fatal("dry run changed the tree")
			}
			run(t, runner, steps, false)

			for _, cid := range verify {
				if r := ev.Check(context.Background(), b.Check(cid)); r.State != checks.Pass {
					t.Errorf("after: %s = %v %s (%s)", cid, r.State, r.Message, r.Observed)
				}
			}
			if id == "RB-CERT-001" && rotated != 1 {
				t.Errorf("rotated %d times", rotated)
			}
		})
	}
}

func run(t *testing.T, r *Runner, steps []runbook.Step, dry bool) {
	t.Helper()
	for _, s := range steps {
		out, err := r.Run(context.Background(), s.Action, s.Params, dry)
		if err != nil {
			t.Fatalf("%s (dry %t): %v", s.Action, dry, err)
		}
		t.Logf("%s dry=%t changed=%t: %s", s.Action, dry, out.Changed, out.Output)
	}
}

func prepare(t *testing.T, files map[string]F, svcs map[string]svcpkg.SimService,
	pkgs map[string]string, rhel bool) (string, *hostfs.FS) {
	t.Helper()
	root := checkstest.Debian(t)
	write := map[string]F{}
	for p, f := range files {
		if f.Mode == 1 {
			if err := os.Remove(filepath.Join(root, p)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if f.Content == "" {
			old, _ := os.ReadFile(filepath.Join(root, p))
			f.Content = string(old) + "x\n"
		}
		write[p] = f
	}
	if rhel {
		write["/etc/os-release"] = F{Content: "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n"}
	}
	checkstest.Write(t, root, write)

	fsys, _ := hostfs.New(root)
	st, _ := svcpkg.LoadSim(fsys)
	for n, s := range svcs {
		st.Services[n] = s
	}
	for n, v := range pkgs {
		st.Packages[n] = v
		st.SecurityUpdates = map[string]string{n: "1.9.13p3-1"}
	}
	if err := svcpkg.SaveSim(fsys, st); err != nil {
		t.Fatal(err)
	}
	return root, fsys
}

// snapshot hashes every file's path, mode, owner and content under root.
func snapshot(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := os.Lstat(p)
		fmt.Fprintf(h, "%s %v\n", p, fi.Mode())
		if d.Type().IsRegular() {
			data, _ := os.ReadFile(p)
			h.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestImplementsEveryAction(t *testing.T) {
	if got, want := Names(), runbook.ActionNames(); !slices.Equal(got, want) {
		t.Errorf("implemented %v, runbook.Actions %v", got, want)
	}
}

func TestRefusals(t *testing.T) {
	root := checkstest.Debian(t)
	fsys, _ := hostfs.New(root)
	r := New(Config{FS: fsys, Services: svcpkg.New(fsys, svcpkg.FamilyDeb, discard()), Log: discard()})
	ctx := context.Background()

	if _, err := r.Run(ctx, "format_disk", nil, false); !errors.Is(err, ErrUnknownAction) {
		t.Errorf("unknown action: %v", err)
	}
	if _, err := r.Run(ctx, runbook.ActionShell, map[string]string{"script": "touch /tmp/x"}, false); !errors.Is(err, ErrShellDisabled) {
		t.Errorf("shell: %v", err)
	}
	if _, err := r.Run(ctx, runbook.ActionLockAccount, map[string]string{"user": "root"}, false); err == nil {
		t.Error("locked root")
	}
	if _, err := r.Run(ctx, runbook.ActionSetSysctl, map[string]string{"key": "a.b", "value": "1",
		"file": "/etc/passwd"}, false); err == nil || !strings.Contains(err.Error(), "sysctl.d") {
		t.Errorf("sysctl outside sysctl.d: %v", err)
	}
	// A NixOS-style symlinked file is not replaced.
	if err := os.Rename(filepath.Join(root, "etc/login.defs"), filepath.Join(root, "etc/static-login.defs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/static-login.defs", filepath.Join(root, "etc/login.defs")); err != nil {
		t.Fatal(err)
	}
	_, err := r.Run(ctx, runbook.ActionEnsureKeyValue, map[string]string{"path": "/etc/login.defs",
		"key": "PASS_MAX_DAYS", "value": "30"}, false)
	if !errors.Is(err, hostfs.ErrSymlink) {
		t.Errorf("symlinked file: %v", err)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
