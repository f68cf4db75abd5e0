package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

const interval = 300 * time.Millisecond

// startFleet enrolls and starts n agents in tenant clinic-a and waits until all are online.
func startFleet(t *testing.T, in *installation, n int) []*agent {
	t.Helper()
	in.wardctl("tenant", "create", "clinic-a")
	token := in.token("clinic-a", "--uses", fmt.Sprint(n))
	agents := make([]*agent, n)
	for i := range agents {
		agents[i] = in.enroll(fmt.Sprintf("agent-%d", i+1), token)
		agents[i].start()
	}
	waitFor(t, 30*time.Second, "all agents online with acked heartbeats", func() bool {
		list := in.agents("clinic-a")
		for _, a := range agents {
			if info := list[a.id]; !info.Online || info.AckedSeq < 2 {
				return false
			}
		}
		return true
	})
	return agents
}

// waitAcked waits until every agent's acked sequence number reaches want[agent id].
func waitAcked(t *testing.T, in *installation, agents []*agent, want map[string]uint64) {
	t.Helper()
	waitFor(t, 60*time.Second, "spooled messages acknowledged", func() bool {
		list := in.agents("clinic-a")
		for _, a := range agents {
			if list[a.id].AckedSeq < want[a.id] {
				return false
			}
		}
		return true
	})
}

// stopAndCount stops agents, then the controller, and checks that each agent's stored
// messages are exactly 1..acked with nothing missing or doubled.
func stopAndCount(t *testing.T, in *installation, agents []*agent) {
	t.Helper()
	for _, a := range agents {
		a.run.kill(syscall.SIGTERM)
	}
	final := in.agents("clinic-a")
	in.ctl.kill(syscall.SIGTERM)
	for _, a := range agents {
		acked := final[a.id].AckedSeq
		msgs := in.storedMessages("clinic-a", a.id)
		hb := checkExactlyOnce(t, a.name, msgs, acked)
		t.Logf("%s: %d messages stored (seq 1..%d), %d heartbeats", a.name, len(msgs), acked, hb)
	}
}

// TestControllerCrashLosesNothing kills the controller with SIGKILL while agents stream,
// keeps it down while they spool, restarts it, and counts every stored sequence number.
func TestControllerCrashLosesNothing(t *testing.T) {
	in := newInstallation(t, interval)
	in.startController()
	agents := startFleet(t, in, 3)

	// Heartbeats spooled during the outage come on top of what was acked before it.
	outage := 10 * interval
	want := make(map[string]uint64)
	for id, info := range in.agents("clinic-a") {
		want[id] = info.AckedSeq + uint64(outage/interval)
	}
	in.ctl.kill(syscall.SIGKILL)
	time.Sleep(outage)

	in.startController()
	waitAcked(t, in, agents, want)
	for _, a := range agents {
		if n := len(a.run.logLines("resent spooled messages")); n == 0 {
			t.Logf("%s: no resend log line (informational)", a.name)
		}
	}
	stopAndCount(t, in, agents)
}

// TestAgentCrashKeepsSpool stops the controller so that an agent's heartbeats pile up in
// its spool, kills that agent with SIGKILL, and restarts both: everything the agent spooled
// before it died must arrive, once.
func TestAgentCrashKeepsSpool(t *testing.T) {
	in := newInstallation(t, interval)
	in.startController()
	agents := startFleet(t, in, 1)
	a := agents[0]

	outage := 10 * interval
	want := map[string]uint64{a.id: in.agents("clinic-a")[a.id].AckedSeq + uint64(outage/interval)}
	in.ctl.kill(syscall.SIGTERM)
	time.Sleep(outage)
	a.run.kill(syscall.SIGKILL)

	in.startController()
	a.start()
	waitAcked(t, in, agents, want)
	stopAndCount(t, in, agents)
}

// TestLongSpoolIsPacedNotRefused keeps the controller away long enough for an agent to
// spool three times the burst the controller allows, and checks that the agent resends it
// within the rate the Welcome announced: every heartbeat arrives once and no stream is
// ended for flooding.
func TestLongSpoolIsPacedNotRefused(t *testing.T) {
	in := newInstallation(t, interval)
	in.serveArgs = []string{"--message-rate", "10", "--message-burst", "10"}
	in.startController()
	agents := startFleet(t, in, 1)

	outage := 30 * interval // 30 heartbeats, three bursts' worth
	want := map[string]uint64{}
	for id, info := range in.agents("clinic-a") {
		want[id] = info.AckedSeq + uint64(outage/interval)
	}
	in.ctl.kill(syscall.SIGKILL)
	time.Sleep(outage)

	in.startController()
	waitAcked(t, in, agents, want)
	for _, line := range in.ctl.logLines("agent message refused") {
		if line["reason"] == "rate" {
			t.Errorf("a stream was ended for its rate: %v", line)
		}
	}
	stopAndCount(t, in, agents)
}
