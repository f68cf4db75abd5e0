package deploytest

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUnitCommandsReachOnline runs, with the real binaries, the command lines the units
// run: init-once and `ward-controller serve` as in ward-controller.service, a tenant and
// a token with wardctl, enroll-once and `ward-agent run` as in ward-agent.service, and
// waits until the controller lists the agent online.
func TestUnitCommandsReachOnline(t *testing.T) {
	bin := buildBinaries(t, "agent/cmd/ward-agent", "controller/cmd/ward-controller",
		"controller/cmd/wardctl")
	dir := t.TempDir()
	data, state := filepath.Join(dir, "data"), filepath.Join(dir, "state")
	mkdir(t, state)
	listen, metrics := freeAddr(t), freeAddr(t)

	run(t, initOnce, data, "WARD_CONTROLLER_BIN="+bin+"/ward-controller",
		"WARD_TRUST_DOMAIN=ward.test", "WARD_DNS_NAMES=localhost")
	start(t, filepath.Join(dir, "controller.log"), bin+"/ward-controller", "serve",
		"--data-dir", data, "--listen", listen, "--metrics-listen", metrics,
		"--heartbeat-interval", "1s", "--cert-ttl", "1h", "--log-level", "info")
	waitListening(t, listen)

	wardctl := func(args ...string) string {
		all := append([]string{"--controller", listen, "--ca", data + "/ca.pem",
			"--cert", data + "/operators/admin/cert.pem",
			"--key", data + "/operators/admin/key.pem"}, args...)
		return run(t, bin+"/wardctl", all...)
	}
	wardctl("tenant", "create", "clinic-a")
	token := filepath.Join(dir, "enrollment-token")
	writeFile(t, token, strings.TrimSpace(wardctl("token", "create", "--tenant", "clinic-a")),
		0o600)

	agentEnv := []string{"WARD_AGENT_BIN=" + bin + "/ward-agent", "WARD_CONTROLLER=" + listen,
		"WARD_CA_FILE=" + data + "/ca.pem", "WARD_TOKEN_FILE=" + token, "WARD_ROLE=host"}
	run(t, enrollOnce, append([]string{state}, agentEnv...)...)
	checkMode(t, state, "key.pem", 0o600)
	run(t, enrollOnce, append([]string{state}, agentEnv...)...) // enrolled: no-op
	start(t, filepath.Join(dir, "agent.log"), bin+"/ward-agent", "run", "--state-dir", state,
		"--controller", listen, "--host-root", "/", "--log-level", "info",
		"--spool-max-bytes", "67108864")

	deadline := time.Now().Add(30 * time.Second)
	for {
		var agents []struct {
			Tenant string `json:"tenant"`
			Online bool   `json:"online"`
		}
		if err := json.Unmarshal([]byte(wardctl("-o", "json", "agent", "list")),
			&agents); err != nil {
			t.Fatal(err)
		}
		if len(agents) == 1 && agents[0].Tenant == "clinic-a" && agents[0].Online {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not online after 30 s: %+v\n%s", agents,
				readLog(dir, "controller.log", "agent.log"))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// run runs name with args and returns its standard output; trailing KEY=VALUE
// arguments go to its environment instead.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var env []string
	for len(args) > 0 && isAssignment(args[len(args)-1]) {
		env = append(env, args[len(args)-1])
		args = args[:len(args)-1]
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), args, err, stderr)
	}
	return string(out)
}

func isAssignment(s string) bool {
	k, _, ok := strings.Cut(s, "=")
	return ok && k != "" && strings.ToUpper(k) == k && !strings.HasPrefix(k, "-")
}

// start starts a long-running command with its output in logFile; the test stops it.
func start(t *testing.T, logFile, name string, args ...string) {
	t.Helper()
	f, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		f.Close()
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readLog(dir string, names ...string) string {
	var b strings.Builder
	for _, n := range names {
		content, _ := os.ReadFile(filepath.Join(dir, n))
		b.WriteString("--- " + n + "\n" + string(content))
	}
	return b.String()
}
