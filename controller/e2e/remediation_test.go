package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/pkg/baseline"
)

// incidentInfo is what `wardctl incident list -o json` reports of one incident.
type incidentInfo struct {
	ID       string   `json:"id"`
	Tenant   string   `json:"tenant"`
	Agent    string   `json:"agent"`
	Check    string   `json:"check"`
	State    string   `json:"state"`
	Runbook  string   `json:"runbook"`
	Commands []string `json:"commands"`
	Reason   string   `json:"reason"`
}

func (in *installation) incidents(agentID string) []incidentInfo {
	in.t.Helper()
	out := in.wardctl("incident", "list", "--agent", agentID, "-o", "json")
	var list []incidentInfo
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		in.t.Fatalf("incident list json: %v\n%s", err, out)
	}
	return list
}

// incidentIn waits until the agent has an incident for check in state and returns it.
func (in *installation) incidentIn(agentID, check, state string,
	timeout time.Duration) incidentInfo {
	in.t.Helper()
	var found incidentInfo
	waitFor(in.t, timeout, check+" incident "+state+" on "+agentID, func() bool {
		for _, i := range in.incidents(agentID) {
			if i.Check == check && i.State == state {
				found = i
				return true
			}
		}
		return false
	})
	return found
}

// passwordSSH reports what the agent's host tree sets PasswordAuthentication to first.
func (a *agent) passwordSSH() string {
	a.in.t.Helper()
	data, err := os.ReadFile(filepath.Join(a.hostRoot(), "etc/ssh/sshd_config"))
	if err != nil {
		a.in.t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PasswordAuthentication "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestDriftIsRemediatedAndTierThreeWaitsForApproval runs real agents on prepared host
// trees with password SSH enabled: the tier-1 agent's drift opens an incident, RB-SSH-001
// is sent signed and applied, the re-check passes and the incident resolves; the tier-3
// agent's incident waits for `wardctl incident approve`, then goes the same way.
func TestDriftIsRemediatedAndTierThreeWaitsForApproval(t *testing.T) {
	in := newInstallation(t, time.Second)
	in.startController()
	in.wardctl("tenant", "create", "clinic-a")

	auto := in.enroll("web", in.token("clinic-a"))
	gated := in.enroll("pacs", in.token("clinic-a", "--tier", "3"))
	for _, a := range []*agent{auto, gated} {
		a.prepareHost("--password-ssh")
		a.start()
	}
	defer func() {
		for _, a := range []*agent{auto, gated} {
			a.run.kill(syscall.SIGTERM)
		}
	}()

	inc := in.incidentIn(auto.id, "SSH-002", "resolved", 60*time.Second)
	if inc.Runbook != "RB-SSH-001" || len(inc.Commands) != 1 {
		t.Errorf("tier-1 incident: runbook %q, commands %v; want one RB-SSH-001 command",
			inc.Runbook, inc.Commands)
	}
	if !strings.Contains(inc.Reason, "verified") {
		t.Errorf("tier-1 incident resolved because %q, want the verification", inc.Reason)
	}
	if got := auto.passwordSSH(); got != "no" {
		t.Errorf("tier-1 host: PasswordAuthentication %q after remediation, want no", got)
	}
	for _, i := range in.incidents(auto.id) {
		if i.State != "resolved" {
			t.Errorf("tier-1 agent has another incident: %s %s (%s)", i.Check, i.State,
				i.Reason)
		}
	}

	waiting := in.incidentIn(gated.id, "SSH-002", "awaiting_approval", 60*time.Second)
	if got := gated.passwordSSH(); got != "yes" {
		t.Fatalf("tier-3 host changed before approval: PasswordAuthentication %q", got)
	}
	in.wardctl("incident", "approve", waiting.ID)
	in.incidentIn(gated.id, "SSH-002", "resolved", 60*time.Second)
	if got := gated.passwordSSH(); got != "no" {
		t.Errorf("tier-3 host: PasswordAuthentication %q after approval, want no", got)
	}
	show := in.wardctl("incident", "show", waiting.ID)
	if !strings.Contains(show, "admin") {
		t.Errorf("incident show does not name the approver:\n%s", show)
	}
}

// TestBaselinePushReachesAgents pushes a new version of hipaa-v1: the running agent
// verifies and applies it, keeps it in its state directory and reports the version,
// which the controller shows beside the tenant's baseline.
func TestBaselinePushReachesAgents(t *testing.T) {
	in := newInstallation(t, time.Second)
	in.startController()
	in.wardctl("tenant", "create", "clinic-a")
	a := in.enroll("web", in.token("clinic-a"))
	a.start()
	defer a.run.kill(syscall.SIGTERM)

	versionOf := func() string {
		var list []struct {
			Tenant        string            `json:"tenant"`
			AgentVersions map[string]string `json:"agent_versions"`
		}
		out := in.wardctl("baseline", "list", "-o", "json")
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("baseline list json: %v\n%s", err, out)
		}
		for _, b := range list {
			if b.Tenant == "clinic-a" {
				return b.AgentVersions[a.id]
			}
		}
		return ""
	}
	waitFor(t, 30*time.Second, "the agent to report the shipped baseline", func() bool {
		return versionOf() == "1.0.0"
	})

	doc := bytes.Replace(baseline.ShippedDocument(), []byte("\nversion: 1.0.0\n"),
		[]byte("\nversion: 1.0.1\n"), 1)
	file := filepath.Join(in.dir, "hipaa-v1.yaml")
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	in.wardctl("baseline", "push", "clinic-a", file)
	waitFor(t, 30*time.Second, "the agent to report 1.0.1", func() bool {
		return versionOf() == "1.0.1"
	})
	kept, err := os.ReadFile(filepath.Join(a.state, "baseline.yaml"))
	if err != nil || !bytes.Contains(kept, []byte("\nversion: 1.0.1\n")) {
		t.Fatalf("the agent did not keep the pushed baseline: %v", err)
	}
}
