package deploytest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

const testVersion = "1.2.3"

// buildBinaries compiles the named commands of the workspace into a temporary directory,
// as `make build` does, and returns that directory. Paths are relative to the repository
// root.
func buildBinaries(t *testing.T, pkgs ...string) string {
	t.Helper()
	for _, p := range pkgs {
		if _, err := os.Stat(filepath.Join("..", p)); err != nil {
			t.Skipf("%s is not in the tree yet: %v", p, err)
		}
	}
	bin := t.TempDir()
	args := append([]string{"build", "-trimpath", "-o", bin + "/"}, prefixed("./", pkgs)...)
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkgs, err, out)
	}
	return bin
}

func prefixed(prefix string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = prefix + s
	}
	return out
}

// buildPackage packages config (relative to the repository root) as format ("deb" or
// "rpm") with the nfpm library that `make package` runs as a command, and returns the
// package's path.
func buildPackage(t *testing.T, config, format, binDir string) string {
	t.Helper()
	env := map[string]string{"VERSION": testVersion, "ARCH": runtime.GOARCH, "BIN_DIR": binDir}
	cfg, err := nfpm.ParseFileWithEnvMapping(filepath.Join("..", config), func(k string) string {
		return env[k]
	})
	if err != nil {
		t.Fatalf("parse %s: %v", config, err)
	}
	info, err := cfg.Get(format)
	if err != nil {
		t.Fatal(err)
	}
	info = nfpm.WithDefaults(info)
	fromRepositoryRoot(t, info)
	if err := nfpm.Validate(info); err != nil {
		t.Fatalf("%s: %v", config, err)
	}
	packager, err := nfpm.Get(format)
	if err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), packager.ConventionalFileName(info))
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := packager.Package(info, f); err != nil {
		t.Fatalf("package %s as %s: %v", config, format, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// fromRepositoryRoot makes the relative paths of a package configuration, which are
// relative to the repository root, absolute.
func fromRepositoryRoot(t *testing.T, info *nfpm.Info) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	for _, c := range info.Contents {
		c.Source = abs(c.Source)
	}
	s := &info.Scripts
	s.PreInstall, s.PostInstall = abs(s.PreInstall), abs(s.PostInstall)
	s.PreRemove, s.PostRemove = abs(s.PreRemove), abs(s.PostRemove)
}

// fakeSystemctl puts a systemctl first in PATH that records its arguments and returns
// the record's path.
func fakeSystemctl(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	_, calls := recordingStub(t, dir, "systemctl")
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return calls
}

// dpkgRoot prepares an empty Debian root for `dpkg --root`: its database and a
// /run/systemd/system that makes the maintainer scripts talk to systemd.
func dpkgRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates",
		"var/lib/dpkg/triggers", "run/systemd/system"} {
		mkdir(t, filepath.Join(root, d))
	}
	writeFile(t, filepath.Join(root, "var/lib/dpkg/status"), "", 0o644)
	return root
}

// dpkg runs dpkg on root. Maintainer scripts run outside a chroot with DPKG_ROOT set,
// so they act on root, and talk to the fake systemctl.
func dpkg(t *testing.T, root string, args ...string) string {
	t.Helper()
	all := append([]string{"--root=" + root, "--force-script-chrootless",
		"--force-not-root", "--force-bad-path"}, args...)
	out, err := exec.Command("dpkg", all...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestAgentDeb(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg is not installed: this test needs a Debian machine")
	}
	bin := buildBinaries(t, "agent/cmd/ward-agent")
	deb := buildPackage(t, "packaging/nfpm/ward-agent.yaml", "deb", bin)
	checkAgentDeb(t, deb)
}

// checkAgentDeb installs, upgrades, removes and purges the agent's .deb in a throwaway
// root and checks files, modes, the unit, the conffile and what the scripts ask systemd.
func checkAgentDeb(t *testing.T, deb string) {
	info, err := exec.Command("dpkg-deb", "--field", deb, "Package", "Version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(info); !strings.Contains(got, "Package: ward-agent") ||
		!strings.Contains(got, "Version: "+testVersion) {
		t.Errorf("control fields:\n%s", got)
	}

	calls := fakeSystemctl(t)
	root := dpkgRoot(t)
	dpkg(t, root, "--install", deb)

	checkMode(t, root, "usr/bin/ward-agent", 0o755)
	checkMode(t, root, "usr/lib/ward-agent/enroll-once", 0o755)
	checkMode(t, root, "usr/lib/systemd/system/ward-agent.service", 0o644)
	checkMode(t, root, "usr/share/ward-agent/collector.conf", 0o644)
	checkMode(t, root, "etc/ward/agent.env", 0o644)
	checkMode(t, root, "var/lib/ward-agent", os.ModeDir|0o700)
	checkSameFile(t, filepath.Join(root, "usr/lib/systemd/system/ward-agent.service"), agentUnit)
	if conffiles := dpkgStatus(t, root, "ward-agent", "Conffiles"); !strings.Contains(
		conffiles, "/etc/ward/agent.env") {
		t.Errorf("/etc/ward/agent.env is not a conffile; Conffiles: %q", conffiles)
	}

	// The packaged binary is the agent and runs.
	if out, err := exec.Command(filepath.Join(root, "usr/bin/ward-agent"),
		"version").CombinedOutput(); err != nil {
		t.Errorf("ward-agent version: %v\n%s", err, out)
	}

	// First install, not enrolled: enabled, never started.
	got := readCalls(t, calls)
	if !containsCall(got, "enable ward-agent.service") {
		t.Errorf("first install did not enable the agent; systemctl calls: %q", got)
	}
	if containsCall(got, "start") || containsCall(got, "restart") {
		t.Errorf("first install started an unenrolled agent; systemctl calls: %q", got)
	}

	// Upgrade of an enrolled agent: restarted on the new binary, not re-enabled.
	writeFile(t, filepath.Join(root, "var/lib/ward-agent/cert.pem"), "cert", 0o644)
	writeFile(t, filepath.Join(root, "etc/ward/agent.env"), "WARD_CONTROLLER=kept:7443\n", 0o644)
	os.Remove(calls)
	dpkg(t, root, "--force-confold", "--install", deb)
	got = readCalls(t, calls)
	if !containsCall(got, "restart ward-agent.service") || containsCall(got, "enable") {
		t.Errorf("upgrade of an enrolled agent: systemctl calls %q, want a restart only", got)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/ward/agent.env")); !strings.Contains(
		string(b), "kept:7443") {
		t.Errorf("the upgrade replaced the edited /etc/ward/agent.env:\n%s", b)
	}

	// Removal stops and disables; the identity stays until a purge.
	os.Remove(calls)
	dpkg(t, root, "--remove", "ward-agent")
	if got := readCalls(t, calls); !containsCall(got, "disable --now ward-agent.service") {
		t.Errorf("removal: systemctl calls %q, want disable --now", got)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/ward-agent/cert.pem")); err != nil {
		t.Errorf("removal deleted the agent's identity: %v", err)
	}
	dpkg(t, root, "--purge", "ward-agent")
	if _, err := os.Stat(filepath.Join(root, "var/lib/ward-agent")); !os.IsNotExist(err) {
		t.Errorf("purge kept /var/lib/ward-agent: %v", err)
	}
}

func TestControllerDeb(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg is not installed: this test needs a Debian machine")
	}
	bin := buildBinaries(t, "controller/cmd/ward-controller", "controller/cmd/wardctl")
	deb := buildPackage(t, "packaging/nfpm/ward-controller.yaml", "deb", bin)

	// Unpacked only: configuring would create a system user on this machine.
	root := dpkgRoot(t)
	dpkg(t, root, "--unpack", deb)

	checkMode(t, root, "usr/bin/ward-controller", 0o755)
	checkMode(t, root, "usr/bin/wardctl", 0o755)
	checkMode(t, root, "usr/lib/ward-controller/init-once", 0o755)
	checkMode(t, root, "usr/lib/systemd/system/ward-controller.service", 0o644)
	checkMode(t, root, "usr/lib/sysusers.d/ward-controller.conf", 0o644)
	// Unpacked, not configured: dpkg keeps the new conffile aside until configuration.
	checkMode(t, root, "etc/ward/controller.env.dpkg-new", 0o644)
	checkSameFile(t, filepath.Join(root, "usr/lib/systemd/system/ward-controller.service"),
		controllerUnit)
	if conffiles := dpkgStatus(t, root, "ward-controller", "Conffiles"); !strings.Contains(
		conffiles, "/etc/ward/controller.env") {
		t.Errorf("/etc/ward/controller.env is not a conffile; Conffiles: %q", conffiles)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		if _, err := os.Stat(filepath.Join(root, "var/lib/dpkg/info",
			"ward-controller."+script)); err != nil {
			t.Errorf("no %s script: %v", script, err)
		}
	}
}

func TestAgentRpm(t *testing.T) {
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Skip("rpm is not installed (make test-deps installs it)")
	}
	bin := buildBinaries(t, "agent/cmd/ward-agent")
	rpm := buildPackage(t, "packaging/nfpm/ward-agent.yaml", "rpm", bin)

	query := func(args ...string) string {
		out, err := exec.Command("rpm", append([]string{"-qp"}, append(args, rpm)...)...).
			CombinedOutput()
		if err != nil {
			t.Fatalf("rpm -qp %s: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if got := query("--queryformat", "%{NAME} %{VERSION}"); got != "ward-agent "+testVersion {
		t.Errorf("name and version = %q", got)
	}
	if got := query("--configfiles"); strings.TrimSpace(got) != "/etc/ward/agent.env" {
		t.Errorf("config files = %q, want /etc/ward/agent.env", got)
	}
	listing := query("--dump")
	for path, mode := range map[string]string{
		"/usr/bin/ward-agent":                        "0100755",
		"/usr/lib/ward-agent/enroll-once":            "0100755",
		"/usr/lib/systemd/system/ward-agent.service": "0100644",
		"/var/lib/ward-agent":                        "040700",
	} {
		if !dumpHas(listing, path, mode) {
			t.Errorf("rpm has no %s with mode %s:\n%s", path, mode, listing)
		}
	}
	if scripts := query("--scripts"); !strings.Contains(scripts, "cert.pem") {
		t.Errorf("rpm postinstall does not guard the start on cert.pem:\n%s", scripts)
	}
}

// dumpHas reports whether an `rpm --dump` listing has path with mode.
func dumpHas(dump, path, mode string) bool {
	sc := bufio.NewScanner(strings.NewReader(dump))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 4 && f[0] == path && f[4] == mode {
			return true
		}
	}
	return false
}

func checkMode(t *testing.T, root, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(filepath.Join(root, path))
	if err != nil {
		t.Errorf("/%s: %v", path, err)
		return
	}
	if got := fi.Mode() & (os.ModeDir | os.ModePerm); got != want {
		t.Errorf("/%s: mode %v, want %v", path, got, want)
	}
}

func checkSameFile(t *testing.T, got, want string) {
	t.Helper()
	a, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Errorf("%s differs from %s", got, want)
	}
}

// dpkgStatus returns a field of a package's record in root's dpkg database, with its
// continuation lines.
func dpkgStatus(t *testing.T, root, pkg, field string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "var/lib/dpkg/status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, record := range strings.Split(string(b), "\n\n") {
		if !strings.Contains(record, "Package: "+pkg+"\n") {
			continue
		}
		_, rest, ok := strings.Cut(record, "\n"+field+":")
		if !ok {
			return ""
		}
		var value []string
		for i, line := range strings.Split(rest, "\n") {
			if i > 0 && !strings.HasPrefix(line, " ") {
				break
			}
			value = append(value, strings.TrimSpace(line))
		}
		return strings.Join(value, "\n")
	}
	return ""
}

func containsCall(calls []string, substr string) bool {
	for _, c := range calls {
		if strings.Contains(c, substr) {
			return true
		}
	}
	return false
}
