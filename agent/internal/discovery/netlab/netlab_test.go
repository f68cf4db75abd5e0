package netlab

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	Main()
	os.Exit(m.Run())
}

// TestClinic builds the clinic, checks that its services answer from the collector, and
// that closing it leaves no namespace and no process behind.
func TestClinic(t *testing.T) {
	c := NewClinic(t)

	checks := [][]string{
		{"snmpget", "-v2c", "-c", SNMPCommunity, SwitchAddr, ".1.3.6.1.2.1.1.5.0"},
		{"snmpget", "-v3", "-l", "authPriv", "-u", SNMPUser, "-a", "SHA", "-A", SNMPAuthPass,
			"-x", "AES", "-X", SNMPPrivPass, SwitchAddr, ".1.3.6.1.2.1.1.5.0"},
		{"echoscu", "-aec", ModalityAET, ModalityAddr, "104"},
	}
	for _, args := range checks {
		out, err := c.Exec(c.Collector, args[0], args[1:]...)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if args[0] == "snmpget" && !strings.Contains(string(out), SwitchName) {
			t.Errorf("%s: %s", args[0], out)
		}
	}

	// The quiet host's chatter reaches the passive bridge as ARP requests.
	capt := c.StartCapture(c.PassiveBridge)
	time.Sleep(time.Second)
	pkts := capt.Stop()
	arps := 0
	for _, p := range pkts {
		if p.ARPOp == 1 && p.SrcIP == QuietAddr {
			arps++
		}
	}
	if arps == 0 {
		t.Errorf("no ARP request from the quiet host in %d frames: %v", len(pkts), pkts)
	}

	namespaces := c.Namespaces()
	c.Close()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range namespaces {
		if strings.Contains(string(out), ns) {
			t.Errorf("namespace %s left behind", ns)
		}
	}
	ps, _ := exec.Command("ps", "-eo", "args").Output()
	if strings.Contains(string(ps), c.Dir()) {
		t.Errorf("a process of the lab is still running:\n%s", ps)
	}
}
