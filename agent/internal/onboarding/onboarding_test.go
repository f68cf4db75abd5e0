package onboarding

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardsec/ward/agent/internal/bootstrap"
	"github.com/wardsec/ward/agent/internal/discovery/netlab"
)

func TestMain(m *testing.M) {
	netlab.Main()
	os.Exit(m.Run())
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds ward-agent, ward-controller and wardctl once, static as shipped.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "ward-onboarding-bin-")
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

// device is the part of `wardctl -o json device list` the test reads.
type device struct {
	ID        string   `json:"id"`
	Addresses []string `json:"addresses"`
	Type      string   `json:"type"`
	Tier      int      `json:"tier"`
	Strategy  string   `json:"strategy"`
	State     string   `json:"state"`
	Reason    string   `json:"state_reason"`
	AgentID   string   `json:"agent_id"`
	Methods   []string `json:"methods"`
}

func (d device) state() string {
	return strings.ToLower(strings.TrimPrefix(d.State, "DEVICE_STATE_"))
}

// TestClinicOnboarding runs the whole onboarding of the namespace clinic: nothing is
// installed on the Server but sshd, and at the end it runs an enrolled agent that the
// controller decided to install, through the collector, with a token minted for it.
func TestClinicOnboarding(t *testing.T) {
	if testing.Short() {
		t.Skip("onboarding builds three binaries and scans a network")
	}
	c := netlab.NewClinic(t)
	bin := binaries(t)
	dir := c.Dir()
	_, statErr := os.Stat("/usr/bin/ward-agent")
	installedBefore := statErr == nil

	// The collector namespace resolves the controller's name (ip netns exec bind-mounts
	// /etc/netns/NS/hosts over /etc/hosts).
	etc := filepath.Join("/etc/netns", c.Collector)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(etc) })
	hosts := "127.0.0.1 localhost\n" + netlab.CollectorAddr + " " + netlab.ControllerName + "\n"
	if err := os.WriteFile(filepath.Join(etc, "hosts"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}

	// A real controller beside the collector.
	data := filepath.Join(dir, "controller")
	run(t, filepath.Join(bin, "ward-controller"), "init", "--data-dir", data,
		"--trust-domain", "clinic.ward.test", "--dns", netlab.ControllerName)
	c.Start(c.Collector, "controller", filepath.Join(bin, "ward-controller"), "serve",
		"--data-dir", data, "--listen", netlab.CollectorAddr+":7443",
		"--metrics-listen", "127.0.0.1:7090", "--heartbeat-interval", "1s")
	c.WaitTCP(c.Collector, netlab.CollectorAddr+":7443", 30*time.Second)
	ctl := netlab.ControllerName + ":7443"
	wardctl := func(args ...string) string {
		t.Helper()
		full := append([]string{"--controller", ctl,
			"--cert", filepath.Join(data, "operators/admin/cert.pem"),
			"--key", filepath.Join(data, "operators/admin/key.pem"),
			"--ca", filepath.Join(data, "ca.pem")}, args...)
		out, err := c.Exec(c.Collector, filepath.Join(bin, "wardctl"), full...)
		if err != nil {
			t.Fatalf("wardctl %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	wardctl("tenant", "create", "clinic")

	// The Server's agent checks its real root (this machine, seen through the Server's
	// overlay), so the tenant runs a one-check baseline without runbooks: nothing is ever
	// remediated on the machine running the test.
	labBaseline := filepath.Join(dir, "lab-baseline.yaml")
	write(t, labBaseline, labBaselineYAML, 0o644)
	wardctl("baseline", "push", "clinic", labBaseline)

	// The collector: enrolled with a token allowing its role, holding its SSH key (authorised on the
	// Server, as an MSP does when it prepares a clinic) and the agent binary to install.
	state := filepath.Join(dir, "collector")
	token := filepath.Join(dir, "collector-token")
	write(t, token, wardctl("token", "create", "--tenant", "clinic", "--role", "collector"),
		0o600)
	if out, err := c.Exec(c.Collector, filepath.Join(bin, "ward-agent"), "enroll",
		"--controller", ctl, "--token-file", token, "--ca-file",
		filepath.Join(data, "ca.pem"), "--state-dir", state, "--role", "collector"); err != nil {
		t.Fatalf("collector enroll: %v\n%s", err, out)
	}
	boot := filepath.Join(state, bootstrap.StateDir)
	if err := os.MkdirAll(filepath.Join(boot, bootstrap.BinaryDirName), 0o700); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(boot, bootstrap.KeyFile)
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ward-collector", "-f", key)
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	write(t, c.AuthorizedKeys, string(pub), 0o600)
	agentBin, err := os.ReadFile(filepath.Join(bin, "ward-agent"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(boot, bootstrap.BinaryDirName, "ward-agent-linux-"+runtime.GOARCH),
		string(agentBin), 0o755)
	c.Start(c.Collector, "collector", filepath.Join(bin, "ward-agent"), "run",
		"--state-dir", state)

	// The site configuration, set by an operator; the controller pushes it to the
	// collector, which scans.
	for name, secret := range map[string]string{"auth": netlab.SNMPAuthPass,
		"priv": netlab.SNMPPrivPass} {
		write(t, filepath.Join(dir, "snmp-"+name), secret, 0o600)
	}
	wardctl("site", "set", "--tenant", "clinic", "--subnet", netlab.ScannedSubnet,
		"--passive-subnet", netlab.PassiveSubnet, "--exclude", netlab.ExcludedAddr,
		"--probe-rate", "3000", "--ports", "22,80,104,2575",
		"--snmp", "v3:"+netlab.SNMPUser+":SHA:"+filepath.Join(dir, "snmp-auth")+":AES:"+
			filepath.Join(dir, "snmp-priv"))

	// Wait until the Server is enrolled; approve it if the controller asks for that.
	byAddr := map[string]device{}
	approved := false
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var list []device
		if err := json.Unmarshal([]byte(wardctl("-o", "json", "device", "list",
			"--tenant", "clinic")), &list); err != nil {
			t.Fatalf("device list: %v", err)
		}
		byAddr = map[string]device{}
		for _, d := range list {
			for _, a := range d.Addresses {
				byAddr[a] = d
			}
		}
		srv, ok := byAddr[netlab.ServerAddr]
		if ok && srv.state() == "enrolled" {
			break
		}
		if ok && srv.state() == "failed" {
			t.Fatalf("the server's bootstrap failed: %s", srv.Reason)
		}
		if ok && srv.state() == "pending_approval" && !approved {
			t.Logf("the server waits for approval (%s); approving it", srv.Reason)
			wardctl("device", "approve", srv.ID)
			approved = true
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server is not enrolled after 5 minutes: %+v\ncollector log:\n%s",
				srv, tail(filepath.Join(dir, "collector.log")))
		}
		time.Sleep(time.Second)
	}
	t.Logf("wardctl device list:\n%s", wardctl("device", "list", "--tenant", "clinic"))

	// What was found and how the controller decided.
	want := []struct {
		addr, typ, state string
		tier             int
	}{
		{netlab.ServerAddr, "", "enrolled", 0},
		{netlab.SwitchAddr, "network_switch", "agentless", 0},
		{netlab.ModalityAddr, "", "", 3},
	}
	for _, w := range want {
		d, ok := byAddr[w.addr]
		switch {
		case !ok:
			t.Errorf("%s is not in the inventory", w.addr)
		case w.typ != "" && d.Type != w.typ:
			t.Errorf("%s: type %s, want %s", w.addr, d.Type, w.typ)
		case w.state != "" && d.state() != w.state:
			t.Errorf("%s: state %s, want %s", w.addr, d.state(), w.state)
		case w.tier != 0 && d.Tier != w.tier:
			t.Errorf("%s: tier %d, want %d", w.addr, d.Tier, w.tier)
		}
	}
	if d := byAddr[netlab.ModalityAddr]; d.state() == "enrolling" || d.state() == "enrolled" {
		t.Errorf("the DICOM modality is %s: a clinical device must never get an agent", d.state())
	}
	if d, ok := byAddr[netlab.ExcludedAddr]; ok {
		t.Errorf("the excluded address is in the inventory: %+v", d)
	}

	// The Server's agent is online under the id the device names, and heartbeating.
	srv := byAddr[netlab.ServerAddr]
	var agents []map[string]any
	if err := json.Unmarshal([]byte(wardctl("-o", "json", "agent", "list", "--tenant",
		"clinic")), &agents); err != nil {
		t.Fatal(err)
	}
	online := false
	for _, a := range agents {
		if a["id"] == srv.AgentID && a["online"] == true {
			online = true
		}
	}
	if !online {
		t.Errorf("the server's agent %q is not online: %v", srv.AgentID, agents)
	}
	// The collector reports the bootstrap's result once it has seen the agent online,
	// which can come just after the enrollment.
	var ev string
	for end := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		ev = wardctl("evidence", "list", "--tenant", "clinic", "--type", "device.bootstrapped")
		if strings.Contains(ev, srv.ID) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("no device.bootstrapped evidence for %s:\n%s", srv.ID, ev)
		}
	}
	t.Logf("evidence of the bootstrap:\n%s", ev)

	// The agent went onto the Server (its own file system), not onto this machine.
	if _, err := os.Stat(c.ServerHost.Path("/usr/bin/ward-agent")); err != nil {
		t.Errorf("the server's /usr/bin/ward-agent: %v", err)
	}
	if _, err := os.Stat("/usr/bin/ward-agent"); err == nil && !installedBefore {
		t.Errorf("the bootstrap wrote /usr/bin/ward-agent on the test machine")
	}
}

// labBaselineYAML is the test tenant's baseline: one read-only check that the bootstrap
// makes pass, and no runbook.
const labBaselineYAML = `id: onboarding-lab
version: 1.0.0
title: Onboarding test baseline
description: One read-only check, so that nothing is remediated on the test machine.
checks:
  - id: LAB-001
    title: The agent's configuration is installed
    rationale: The bootstrap writes it; its presence shows the install completed.
    hipaa: ["164.312(b)"]
    severity: low
    platforms: [debian, rhel, nixos]
    test: {kind: file_exists, path: /etc/ward/agent.env}
    runbook: none
`

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// tail returns the last lines of a log, for failure messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}
