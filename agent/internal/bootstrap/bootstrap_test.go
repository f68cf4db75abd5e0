package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardsec/ward/agent/internal/discovery/netlab"
)

func TestMain(m *testing.M) {
	netlab.Main()
	goleak.VerifyTestMain(m)
}

// TestAssetsMatchPackaging keeps the embedded unit and script identical to the packaged
// ones, so that a bootstrapped server runs exactly what the .deb installs.
func TestAssetsMatchPackaging(t *testing.T) {
	for _, f := range []struct {
		embedded []byte
		packaged string
	}{
		{[]byte(unitFile), "../../../packaging/systemd/ward-agent.service"},
		{enrollOnce, "../../../packaging/libexec/ward-agent-enroll-once"},
	} {
		want, err := os.ReadFile(f.packaged)
		if err != nil {
			t.Fatal(err)
		}
		if !sameBytes(f.embedded, want) {
			t.Errorf("embedded copy of %s differs: copy it into assets/", f.packaged)
		}
	}
}

func TestUnitUnderRoot(t *testing.T) {
	b := &run{t: Target{Root: "/srv/x"}}
	u := string(b.unit())
	for _, want := range []string{"ExecStart=/srv/x/usr/bin/ward-agent run --state-dir " +
		"/srv/x/var/lib/ward-agent", "EnvironmentFile=/srv/x/etc/ward/agent.env",
		"ExecStartPre=/srv/x/usr/lib/ward-agent/enroll-once", "NoNewPrivileges=yes"} {
		if !strings.Contains(u, want) {
			t.Errorf("unit under /srv/x lacks %q", want)
		}
	}
	if u := string((&run{t: Target{Root: "/"}}).unit()); u != unitFile {
		t.Error("unit under / differs from the packaged one")
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		t    Target
		want string
	}{
		{"no key", Config{}, Target{Address: "h"}, "no SSH key"},
		{"no address", Config{KeyPath: "k", KnownHostsPath: "h"}, Target{}, "no target"},
		{"relative root", Config{KeyPath: "k", KnownHostsPath: "h", Controller: "c:1"},
			Target{Address: "h", Root: "x", CA: []byte("x")}, "not absolute"},
		{"no controller", Config{KeyPath: "k", KnownHostsPath: "h"},
			Target{Address: "h", CA: []byte("x")}, "no controller"},
		{"bad init", Config{KeyPath: "k", KnownHostsPath: "h", Controller: "c:1"},
			Target{Address: "h", CA: []byte("x"), Init: "upstart"}, "unknown init"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.cfg, tt.t)
			var se *StepError
			if !errors.As(err, &se) || se.Step != StepConnect || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v, want a connect StepError with %q", err, tt.want)
			}
		})
	}
}

// Environment passed to TestBootstrapInside.
const (
	envMode = "WARD_BOOTSTRAP_TEST_MODE"
	envArgs = "WARD_BOOTSTRAP_TEST_ARGS"
)

// insideArgs is what the outer test hands the inner one.
type insideArgs struct {
	Config Config
	Target Target
	Out    string // file for the JSON result
}

type insideResult struct {
	Result *Result
	Step   string // failed step, if any
	Error  string
	Kind   string // "mismatch", "unknown" or ""
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds ward-agent, ward-controller and wardctl once (static, as shipped).
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "ward-bootstrap-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", binDir,
			"github.com/wardsec/ward/agent/cmd/ward-agent",
			"github.com/wardsec/ward/controller/cmd/ward-controller",
			"github.com/wardsec/ward/controller/cmd/wardctl")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

const (
	labCollector  = "10.77.6.2"
	labServer     = "10.77.6.20"
	labController = "ctl.ward.test"
)

// hostsFor makes ctl.ward.test resolve inside ns (ip netns exec bind-mounts
// /etc/netns/NS/hosts over /etc/hosts for everything started after this).
func hostsFor(t *testing.T, ns string) {
	dir := filepath.Join("/etc/netns", ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	hosts := "127.0.0.1 localhost\n" + labCollector + " " + labController + "\n"
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBootstrapInNamespaces turns the sshd host of a namespace network into an enrolled
// agent streaming heartbeats to a real controller, bootstraps it again (nothing changes),
// and shows that a wrong or unknown host key stops a bootstrap with nothing installed.
func TestBootstrapInNamespaces(t *testing.T) {
	l := netlab.New(t)
	bin := binaries(t)
	l.Bridge("brb")
	collector := l.Namespace("collector")
	server := l.Namespace("server")
	hostsFor(t, collector)
	hostsFor(t, server)
	l.Attach(collector, "eth0", "brb", labCollector+"/24")
	l.Attach(server, "eth0", "brb", labServer+"/24")
	dir := l.Dir()

	// The collector's SSH key, authorised on the server.
	key := filepath.Join(dir, "collector_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).
		CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	authorized := filepath.Join(dir, "authorized_keys")
	copyFile(t, key+".pub", authorized)
	hostPub := l.StartSSHD(server, labServer, authorized)

	// A real controller on the collector's address.
	data := filepath.Join(dir, "controller")
	if out, err := exec.Command(filepath.Join(bin, "ward-controller"), "init", "--data-dir",
		data, "--trust-domain", "lab.ward.test", "--dns", labController).CombinedOutput(); err != nil {
		t.Fatalf("ward-controller init: %v\n%s", err, out)
	}
	l.Start(collector, "controller", filepath.Join(bin, "ward-controller"), "serve",
		"--data-dir", data, "--listen", labCollector+":7443", "--metrics-listen",
		"127.0.0.1:7090", "--heartbeat-interval", "1s")
	l.WaitTCP(collector, labCollector+":7443", 20*time.Second)
	wardctl := func(args ...string) string {
		t.Helper()
		full := append([]string{"--controller", labController + ":7443",
			"--cert", filepath.Join(data, "operators/admin/cert.pem"),
			"--key", filepath.Join(data, "operators/admin/key.pem"),
			"--ca", filepath.Join(data, "ca.pem")}, args...)
		out, err := l.Exec(collector, filepath.Join(bin, "wardctl"), full...)
		if err != nil {
			t.Fatalf("wardctl %v: %v", args, err)
		}
		return string(out)
	}
	wardctl("tenant", "create", "clinic")
	token := strings.TrimSpace(wardctl("token", "create", "--tenant", "clinic"))

	// Agent binaries by architecture, as a collector keeps them.
	agents := filepath.Join(dir, "agents")
	if err := os.MkdirAll(agents, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(bin, "ward-agent"), filepath.Join(agents, "ward-agent-linux-"+goarch[uname(t)]))

	root := filepath.Join(dir, "server-root")
	t.Cleanup(func() { stopFallbackAgent(t, root) })
	cfg := Config{KeyPath: key, KnownHostsPath: filepath.Join(dir, "known_hosts"),
		TrustOnFirstUse: true, BinaryDir: agents, Controller: labController + ":7443",
		CAFile: filepath.Join(data, "ca.pem"), VerifyTimeout: 30 * time.Second}
	target := Target{Address: labServer, Token: token, Root: root, Init: InitFallback}

	// First bootstrap: trust on first use, everything installed, agent online.
	start := time.Now()
	res := inside(t, l, collector, cfg, target)
	if res.Error != "" {
		t.Fatalf("bootstrap failed at %s: %s", res.Step, res.Error)
	}
	t.Logf("bootstrap took %s: %+v", time.Since(start).Round(time.Millisecond), res.Result)
	if hk := res.Result.HostKey; hk.Trust != TrustFirstUse || hk.Fingerprint != fingerprint(t, hostPub) {
		t.Errorf("host key evidence = %+v, want the server's key trusted on first use", hk)
	}
	for _, s := range res.Result.Steps {
		if s.Name != StepConnect && s.Name != StepDetect && s.Name != StepInstall && !s.Changed {
			t.Errorf("first bootstrap: step %s changed nothing: %s", s.Name, s.Detail)
		}
	}
	if _, err := os.Stat(filepath.Join(root, TokenPath)); !os.IsNotExist(err) {
		t.Errorf("the used token is still on the server: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(root, StatePath)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory: %v %v", fi, err)
	}
	// Online, and heartbeats keep arriving: the controller's acknowledged sequence grows.
	acked := func() (uint64, bool) {
		var list []map[string]any
		out := wardctl("-o", "json", "agent", "list", "--tenant", "clinic")
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("agent list: %v: %s", err, out)
		}
		for _, a := range list {
			if a["online"] == true {
				n, _ := strconv.ParseUint(fmt.Sprint(a["acked_seq"]), 10, 64)
				return n, true
			}
		}
		return 0, false
	}
	var first uint64
	deadline := time.Now().Add(20 * time.Second)
	for ok := false; !ok; first, ok = acked() {
		if time.Now().After(deadline) {
			t.Fatalf("no online agent in tenant clinic after the bootstrap")
		}
		time.Sleep(500 * time.Millisecond)
	}
	waitLog(t, filepath.Join(root, LogPath), "connected to controller", 10*time.Second)
	for n := first; n < first+2; n, _ = acked() {
		if time.Now().After(deadline) {
			t.Fatalf("acked seq stays at %d: no heartbeats", n)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Second bootstrap: known host, nothing changes, no token needed.
	again := target
	again.Token = ""
	res = inside(t, l, collector, cfg, again)
	if res.Error != "" {
		t.Fatalf("second bootstrap failed at %s: %s", res.Step, res.Error)
	}
	if res.Result.HostKey.Trust != TrustKnownHosts {
		t.Errorf("second bootstrap host key trust = %s", res.Result.HostKey.Trust)
	}
	for _, s := range res.Result.Steps {
		if s.Changed {
			t.Errorf("second bootstrap: step %s changed the server: %s", s.Name, s.Detail)
		}
	}

	// A known_hosts with another key for the server: stopped at connect, nothing written.
	other := filepath.Join(dir, "other_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other).
		CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	otherPub, _ := os.ReadFile(other + ".pub")
	wrongKnown := filepath.Join(dir, "wrong_known_hosts")
	if err := os.WriteFile(wrongKnown, []byte(labServer+" "+string(otherPub)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, known, kind string
		tofu              bool
	}{
		{"wrong key", wrongKnown, "mismatch", true},
		{"unknown host without tofu", filepath.Join(dir, "empty_known_hosts"), "unknown", false},
	} {
		c := cfg
		c.KnownHostsPath, c.TrustOnFirstUse = tt.known, tt.tofu
		tgt := target
		tgt.Root = filepath.Join(dir, "untouched-"+strings.ReplaceAll(tt.name, " ", "-"))
		res := inside(t, l, collector, c, tgt)
		if res.Step != StepConnect || res.Kind != tt.kind {
			t.Errorf("%s: step %q kind %q error %q, want connect/%s", tt.name, res.Step,
				res.Kind, res.Error, tt.kind)
		}
		if _, err := os.Stat(tgt.Root); !os.IsNotExist(err) {
			t.Errorf("%s: something was installed under %s", tt.name, tgt.Root)
		}
		t.Logf("%s: %s", tt.name, res.Error)
	}
}

// inside runs one bootstrap from the collector namespace.
func inside(t *testing.T, l *netlab.Lab, ns string, cfg Config, tgt Target) insideResult {
	t.Helper()
	out := filepath.Join(l.Dir(), fmt.Sprintf("result-%d.json", time.Now().UnixNano()))
	b, _ := json.Marshal(insideArgs{Config: cfg, Target: tgt, Out: out})
	l.RunInside(ns, "TestBootstrapInside", envArgs+"="+string(b), envMode+"=1")
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res insideResult
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestBootstrapInside runs inside the collector namespace of TestBootstrapInNamespaces.
func TestBootstrapInside(t *testing.T) {
	if !netlab.Inside() || os.Getenv(envMode) == "" {
		t.Skip("runs inside a namespace of TestBootstrapInNamespaces")
	}
	var a insideArgs
	if err := json.Unmarshal([]byte(os.Getenv(envArgs)), &a); err != nil {
		t.Fatal(err)
	}
	a.Config.Log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	res, err := Run(context.Background(), a.Config, a.Target)
	out := insideResult{Result: res}
	if err != nil {
		var se *StepError
		if errors.As(err, &se) {
			out.Step = se.Step
		}
		out.Error = err.Error()
		switch {
		case errors.Is(err, ErrHostKeyMismatch):
			out.Kind = "mismatch"
		case errors.Is(err, ErrHostUnknown):
			out.Kind = "unknown"
		}
	}
	b, _ := json.Marshal(out)
	if err := os.WriteFile(a.Out, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func uname(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("uname", "-m").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func fingerprint(t *testing.T, pubPath string) string {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", pubPath).Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		t.Fatalf("ssh-keygen -l: %q", out)
	}
	return f[1]
}

// stopFallbackAgent stops the agent the fallback started (it runs in its own session,
// outside the lab's process groups).
func stopFallbackAgent(t *testing.T, root string) {
	b, err := os.ReadFile(filepath.Join(root, PIDPath))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for range 50 {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	t.Logf("agent %d killed after 5 s", pid)
}

// waitLog waits until the file at path contains s.
func waitLog(t *testing.T, path, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no %q after %s:\n%s", path, s, timeout, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestTargetFromParams(t *testing.T) {
	got, err := TargetFromParams(map[string]string{ParamAddress: "10.0.0.5", ParamToken: "s",
		ParamUser: "admin", ParamInit: InitFallback})
	if err != nil || got.Address != "10.0.0.5" || got.Token != "s" || got.User != "admin" ||
		got.Init != InitFallback {
		t.Fatalf("TargetFromParams = %+v, %v", got, err)
	}
	for _, p := range []map[string]string{{ParamToken: "s"}, {ParamAddress: "h"}} {
		if _, err := TargetFromParams(p); err == nil {
			t.Errorf("TargetFromParams(%v) accepted", p)
		}
	}
}

func TestHandlerDryRunAndEvidence(t *testing.T) {
	h := &Handler{Config: ConfigFor(t.TempDir(), "ctl:7443", nil)}
	changed, out, err := h.Handle(context.Background(),
		map[string]string{ParamAddress: "10.0.0.5", ParamToken: "secret-token"}, true)
	if err != nil || !changed || strings.Contains(out, "secret-token") {
		t.Fatalf("dry run = %t %q %v", changed, out, err)
	}
	// A real run against nothing: the failure names the step and the evidence says so.
	_, out, err = h.Handle(context.Background(),
		map[string]string{ParamAddress: "127.0.0.1:1", ParamToken: "secret-token"}, false)
	var se *StepError
	if !errors.As(err, &se) || se.Step != StepConnect || strings.Contains(out+err.Error(),
		"secret-token") {
		t.Fatalf("run = %q %v, want a connect failure without the token", out, err)
	}
	r := Result{Address: "h:22", HostKey: HostKey{Type: "ssh-ed25519", Fingerprint: "SHA256:x",
		Trust: TrustFirstUse}, Arch: "x86_64", Init: InitFallback,
		Steps: []Step{{Name: StepConnect}, {Name: StepCopy, Changed: true}}}
	want := "h:22: host key ssh-ed25519 SHA256:x (trust_on_first_use); arch x86_64; " +
		"init fallback; steps connect copy*"
	if got := r.Evidence(); got != want {
		t.Errorf("Evidence = %q, want %q", got, want)
	}
}
