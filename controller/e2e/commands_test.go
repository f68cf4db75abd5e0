package e2e

import (
	"syscall"
	"testing"
	"time"
)

// TestApprovedCommandSurvivesControllerCrash approves a tier-3 incident while its agent
// is stopped, so the signed command is stored but cannot be sent; the controller is then
// killed and restarted, the agent comes back, and the stored command is sent, applied
// and verified.
func TestApprovedCommandSurvivesControllerCrash(t *testing.T) {
	in := newInstallation(t, time.Second)
	in.startController()
	in.wardctl("tenant", "create", "clinic-a")

	pacs := in.enroll("pacs", in.token("clinic-a", "--tier", "3"))
	pacs.prepareHost("--password-ssh")
	pacs.start()
	waiting := in.incidentIn(pacs.id, "SSH-002", "awaiting_approval", 60*time.Second)
	pacs.run.kill(syscall.SIGTERM)

	in.wardctl("incident", "approve", waiting.ID)
	remediating := in.incidentIn(pacs.id, "SSH-002", "remediating", 10*time.Second)
	if len(remediating.Commands) != 1 {
		t.Fatalf("commands %v, want one", remediating.Commands)
	}
	if got := pacs.passwordSSH(); got != "yes" {
		t.Fatalf("host changed while its agent was stopped: %q", got)
	}

	in.ctl.kill(syscall.SIGKILL)
	in.startController()
	pacs.start()
	defer pacs.run.kill(syscall.SIGTERM)

	done := in.incidentIn(pacs.id, "SSH-002", "resolved", 60*time.Second)
	if len(done.Commands) != 1 || done.Commands[0] != remediating.Commands[0] {
		t.Errorf("resolved with commands %v, want the stored %v", done.Commands,
			remediating.Commands)
	}
	if got := pacs.passwordSSH(); got != "no" {
		t.Errorf("host after the resent command: PasswordAuthentication %q, want no", got)
	}
}
