package deploytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wardsec/ward/deploytest/internal/unitfile"
)

const (
	agentUnit      = "../packaging/systemd/ward-agent.service"
	collectorDrop  = "../packaging/systemd/collector.conf"
	controllerUnit = "../packaging/systemd/ward-controller.service"
	enrollOnce     = "../packaging/libexec/ward-agent-enroll-once"
	initOnce       = "../packaging/libexec/ward-controller-init-once"
)

// hardening is what every Ward service sets, whatever installs it (package or NixOS).
var hardening = map[string]string{
	"NoNewPrivileges":         "yes",
	"ProtectSystem":           "strict",
	"PrivateTmp":              "yes",
	"PrivateDevices":          "yes",
	"ProtectKernelTunables":   "yes",
	"ProtectKernelModules":    "yes",
	"ProtectKernelLogs":       "yes",
	"ProtectControlGroups":    "yes",
	"ProtectClock":            "yes",
	"RestrictNamespaces":      "yes",
	"RestrictRealtime":        "yes",
	"RestrictSUIDSGID":        "yes",
	"LockPersonality":         "yes",
	"MemoryDenyWriteExecute":  "yes",
	"SystemCallArchitectures": "native",
	"SystemCallFilter":        "@system-service",
	"UMask":                   "0077",
}

// commandFlags are the flags of each command line the units run, as fixed by the
// interface of ward-agent and ward-controller; a unit using any other flag breaks.
var commandFlags = map[string][]string{
	"ward-agent run": {"--state-dir", "--controller", "--host-root", "--log-level",
		"--spool-max-bytes"},
	"ward-agent enroll": {"--controller", "--token-file", "--ca-file", "--state-dir",
		"--role"},
	"ward-controller serve": {"--data-dir", "--listen", "--metrics-listen",
		"--heartbeat-interval", "--cert-ttl", "--log-level"},
	"ward-controller init": {"--data-dir", "--trust-domain", "--dns", "--name"},
}

func parseUnit(t *testing.T, path string) unitfile.Unit {
	t.Helper()
	u, err := unitfile.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// checkHardening reports every hardening setting u lacks.
func checkHardening(t *testing.T, name string, u unitfile.Unit) {
	t.Helper()
	for key, want := range hardening {
		if got, _ := u.Get("Service", key); got != want {
			t.Errorf("%s: %s = %q, want %q", name, key, got, want)
		}
	}
	if got, _ := u.Get("Service", "ProtectHome"); got != "yes" && got != "read-only" {
		t.Errorf("%s: ProtectHome = %q, want yes or read-only", name, got)
	}
}

func TestAgentUnit(t *testing.T) {
	u := parseUnit(t, agentUnit)
	checkHardening(t, "ward-agent.service", u)

	state := "/var/lib/ward-agent"
	if got, _ := u.Get("Service", "ReadWritePaths"); got != state {
		t.Errorf("ReadWritePaths = %q, want only the state directory %s", got, state)
	}
	if got, _ := u.Get("Service", "StateDirectoryMode"); got != "0700" {
		t.Errorf("StateDirectoryMode = %q, want 0700", got)
	}
	if got := unitfile.List("Service", "RestrictAddressFamilies", u); !sameSet(got,
		"AF_INET", "AF_INET6", "AF_UNIX") {
		t.Errorf("RestrictAddressFamilies = %q, want AF_INET AF_INET6 AF_UNIX", got)
	}
	if got := unitfile.List("Service", "CapabilityBoundingSet", u); len(got) != 0 {
		t.Errorf("host role: CapabilityBoundingSet = %q, want none", got)
	}

	// Enrolled, or a token waiting: otherwise the unit stays inactive.
	conds := u["Unit"]["ConditionPathExists"]
	for _, want := range []string{"|" + state + "/cert.pem", "|/etc/ward/enrollment-token"} {
		if !slices.Contains(conds, want) {
			t.Errorf("ConditionPathExists = %q, want %q among them", conds, want)
		}
	}
	if pre, _ := u.Get("Service", "ExecStartPre"); pre != "/usr/lib/ward-agent/enroll-once "+state {
		t.Errorf("ExecStartPre = %q, want the enroll-once script on %s", pre, state)
	}
	start, _ := u.Get("Service", "ExecStart")
	checkCommand(t, start, "/usr/bin/ward-agent", "run")
	if !strings.Contains(start, "--state-dir "+state) {
		t.Errorf("ExecStart = %q, want --state-dir %s", start, state)
	}
	if got, _ := u.Get("Install", "WantedBy"); got != "multi-user.target" {
		t.Errorf("WantedBy = %q", got)
	}
}

func TestCollectorDropIn(t *testing.T) {
	u := parseUnit(t, agentUnit)
	drop := parseUnit(t, collectorDrop)

	if got := unitfile.List("Service", "RestrictAddressFamilies", u, drop); !sameSet(got,
		"AF_INET", "AF_INET6", "AF_UNIX", "AF_PACKET", "AF_NETLINK") {
		t.Errorf("collector: RestrictAddressFamilies = %q", got)
	}
	if got := unitfile.List("Service", "CapabilityBoundingSet", u, drop); !sameSet(got,
		"CAP_NET_RAW", "CAP_NET_ADMIN") {
		t.Errorf("collector: CapabilityBoundingSet = %q, want CAP_NET_RAW CAP_NET_ADMIN", got)
	}
	for key := range drop["Service"] {
		switch key {
		case "RestrictAddressFamilies", "CapabilityBoundingSet", "AmbientCapabilities":
		default:
			t.Errorf("collector drop-in changes %s; it should only widen the network", key)
		}
	}
}

func TestControllerUnit(t *testing.T) {
	u := parseUnit(t, controllerUnit)
	checkHardening(t, "ward-controller.service", u)

	data := "/var/lib/ward-controller"
	if got, _ := u.Get("Service", "User"); got != "ward-controller" {
		t.Errorf("User = %q, want ward-controller, never root", got)
	}
	if got, _ := u.Get("Service", "ProtectHome"); got != "yes" {
		t.Errorf("ProtectHome = %q, want yes", got)
	}
	if got, _ := u.Get("Service", "ReadWritePaths"); got != data {
		t.Errorf("ReadWritePaths = %q, want %s", got, data)
	}
	if got := unitfile.List("Service", "CapabilityBoundingSet", u); len(got) != 0 {
		t.Errorf("CapabilityBoundingSet = %q, want none", got)
	}
	if got := unitfile.List("Service", "RestrictAddressFamilies", u); !sameSet(got,
		"AF_INET", "AF_INET6", "AF_UNIX") {
		t.Errorf("RestrictAddressFamilies = %q", got)
	}
	start, _ := u.Get("Service", "ExecStart")
	checkCommand(t, start, "/usr/bin/ward-controller", "serve")
	if !strings.Contains(start, "--data-dir "+data) {
		t.Errorf("ExecStart = %q, want --data-dir %s", start, data)
	}
}

// checkCommand checks that a command line runs bin with the subcommand and only the
// flags that subcommand has.
func checkCommand(t *testing.T, line, bin, sub string) {
	t.Helper()
	words := strings.Fields(line)
	if len(words) < 2 || words[0] != bin || words[1] != sub {
		t.Fatalf("command %q, want %s %s ...", line, bin, sub)
	}
	allowed := commandFlags[filepath.Base(bin)+" "+sub]
	for _, w := range words[2:] {
		if strings.HasPrefix(w, "-") && !slices.Contains(allowed, w) {
			t.Errorf("%s %s has no flag %s (flags: %s)", bin, sub, w, allowed)
		}
	}
}

// TestEnrollOnce runs the script the agent unit runs before `ward-agent run`, with a
// stand-in for ward-agent that records its arguments.
func TestEnrollOnce(t *testing.T) {
	tests := []struct {
		name     string
		enrolled bool
		token    bool
		env      []string
		wantRun  bool
		wantFail string
	}{
		{name: "enrolled: nothing to do", enrolled: true, token: true, wantRun: false},
		{name: "token waiting: enrolls", token: true, wantRun: true},
		{name: "no token", wantFail: "no enrollment token at"},
		{name: "no controller", token: true, env: []string{"WARD_CONTROLLER="},
			wantFail: "set WARD_CONTROLLER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			state := filepath.Join(dir, "state")
			mkdir(t, state)
			if tt.enrolled {
				writeFile(t, filepath.Join(state, "cert.pem"), "cert", 0o644)
			}
			tokenFile := filepath.Join(dir, "token")
			if tt.token {
				writeFile(t, tokenFile, "secret-token", 0o600)
			}
			stub, calls := recordingStub(t, dir, "ward-agent")

			cmd := exec.Command(enrollOnce, state)
			cmd.Env = append(os.Environ(), "WARD_AGENT_BIN="+stub,
				"WARD_CONTROLLER=ward.example.test:7443", "WARD_CA_FILE=/etc/ward/ca.pem",
				"WARD_TOKEN_FILE="+tokenFile, "WARD_ROLE=collector")
			cmd.Env = append(cmd.Env, tt.env...)
			out, err := cmd.CombinedOutput()

			if tt.wantFail != "" {
				if err == nil || !strings.Contains(string(out), tt.wantFail) {
					t.Fatalf("err = %v, output %q; want a failure saying %q", err, out, tt.wantFail)
				}
			} else if err != nil {
				t.Fatalf("enroll-once: %v\n%s", err, out)
			}
			if strings.Contains(string(out), "secret-token") {
				t.Errorf("the token appears in the output: %q", out)
			}

			got := readCalls(t, calls)
			want := "enroll --controller ward.example.test:7443 --token-file " + tokenFile +
				" --ca-file /etc/ward/ca.pem --state-dir " + state + " --role collector"
			switch {
			case tt.wantRun && (len(got) != 1 || got[0] != want):
				t.Errorf("ward-agent calls = %q, want [%q]", got, want)
			case !tt.wantRun && len(got) != 0:
				t.Errorf("ward-agent ran: %q", got)
			}
			if tt.wantRun {
				checkCommand(t, "/usr/bin/ward-agent "+got[0], "/usr/bin/ward-agent", "enroll")
			}
		})
	}
}

// TestInitOnce runs the script the controller unit runs before `ward-controller serve`.
func TestInitOnce(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	mkdir(t, data)
	stub, calls := recordingStub(t, dir, "ward-controller")
	env := append(os.Environ(), "WARD_CONTROLLER_BIN="+stub, "WARD_NAME=ctl-1",
		"WARD_DNS_NAMES=ward.example.test  ward-alt.example.test")

	cmd := exec.Command(initOnce, data)
	cmd.Env = append(env, "WARD_TRUST_DOMAIN=")
	if out, err := cmd.CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "WARD_TRUST_DOMAIN") {
		t.Errorf("without a trust domain: err = %v, output %q; want a refusal", err, out)
	}

	cmd = exec.Command(initOnce, data)
	cmd.Env = append(env, "WARD_TRUST_DOMAIN=ward.example.test")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("init-once: %v\n%s", err, out)
	}
	want := "init --data-dir " + data + " --trust-domain ward.example.test --name ctl-1 " +
		"--dns ward.example.test --dns ward-alt.example.test"
	if got := readCalls(t, calls); len(got) != 1 || got[0] != want {
		t.Errorf("ward-controller calls = %q, want [%q]", got, want)
	} else {
		checkCommand(t, "/usr/bin/ward-controller "+got[0], "/usr/bin/ward-controller", "init")
	}

	writeFile(t, filepath.Join(data, "install.json"), "{}", 0o600)
	cmd = exec.Command(initOnce, data)
	cmd.Env = append(env, "WARD_TRUST_DOMAIN=ward.example.test")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("init-once on an initialised directory: %v\n%s", err, out)
	}
	if got := readCalls(t, calls); len(got) != 1 {
		t.Errorf("init ran again on an initialised directory: %q", got)
	}
}

// TestSystemdAnalyzeVerify lets systemd itself read the units, where it is installed.
func TestSystemdAnalyzeVerify(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed; the units are checked by the tests above")
	}
	root := t.TempDir()
	unitDir := filepath.Join(root, "etc/systemd/system")
	mkdir(t, filepath.Join(unitDir, "ward-agent.service.d"))
	for src, dst := range map[string]string{
		agentUnit:      "ward-agent.service",
		controllerUnit: "ward-controller.service",
		collectorDrop:  "ward-agent.service.d/collector.conf",
	} {
		copyFile(t, src, filepath.Join(unitDir, dst), 0o644)
	}

	cmd := exec.Command(bin, "verify", "--man=no",
		filepath.Join(unitDir, "ward-agent.service"),
		filepath.Join(unitDir, "ward-controller.service"))
	out, _ := cmd.CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		// The binaries are not installed on the test machine; anything else is a finding.
		if line == "" || strings.Contains(line, "is not executable") ||
			strings.Contains(line, "No such file or directory") ||
			strings.Contains(line, "Command /usr/") {
			continue
		}
		t.Errorf("systemd-analyze verify: %s", line)
	}
}

func sameSet(got []string, want ...string) bool {
	a, b := slices.Clone(got), slices.Clone(want)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), b)
}

// recordingStub writes an executable that appends its arguments, one call a line, to
// a file; it returns the executable and the file.
func recordingStub(t *testing.T, dir, name string) (bin, calls string) {
	t.Helper()
	bin = filepath.Join(dir, name)
	calls = filepath.Join(dir, name+".calls")
	writeFile(t, bin, "#!/bin/sh\necho \"$*\" >>'"+calls+"'\n", 0o755)
	return bin, calls
}

func readCalls(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, string(b), mode)
}
