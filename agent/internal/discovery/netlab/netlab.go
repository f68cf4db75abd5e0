// Package netlab builds a small clinic network out of Linux network namespaces for tests:
// a hub namespace holding bridges (one per subnet), host namespaces joined to them through
// veth pairs, and real services started inside them (snmpd, sshd, dcmtk's storescp, a web
// server with a product title, an HL7 MLLP stand-in). Everything it creates is removed by
// Close, which New registers with t.Cleanup, so a failing test leaves nothing behind.
//
// It needs root and iproute2; New skips the test with a clear message otherwise. Packages
// that use it call Main from their TestMain, because the small servers run as copies of
// the test binary inside the namespaces.
package netlab

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Lab is one test network. Its methods fail the test on error; they are not safe for
// concurrent use.
type Lab struct {
	t      testing.TB
	prefix string // unique per lab, prefixes every namespace
	dir    string // scratch directory for configs, logs and captures
	hub    string // namespace holding the bridges

	mu         sync.Mutex
	namespaces []string
	procs      []*exec.Cmd
	links      int
	closed     bool
}

// New creates an empty lab with its hub namespace, or skips the test when the machine
// cannot build one (not root, no iproute2).
func New(t testing.TB) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netlab: skipped: namespace tests need root (run the tests as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("netlab: skipped: iproute2's ip is not installed (make test-deps)")
	}

	var b [3]byte
	_, _ = rand.Read(b[:])
	l := &Lab{t: t, prefix: "wardlab-" + hex.EncodeToString(b[:]), dir: t.TempDir()}
	t.Cleanup(l.Close)
	l.hub = l.Namespace("hub")
	return l
}

// Dir returns the lab's scratch directory.
func (l *Lab) Dir() string { return l.dir }

// Namespace creates a namespace named after the lab and name, with loopback up and IPv6
// off (so that no router solicitation or duplicate address probe leaves it unasked), and
// returns its full name.
func (l *Lab) Namespace(name string) string {
	l.t.Helper()
	ns := l.prefix + "-" + name
	l.ip("netns", "add", ns)
	l.mu.Lock()
	l.namespaces = append(l.namespaces, ns)
	l.mu.Unlock()

	l.MustExec(ns, "ip", "link", "set", "lo", "up")
	l.MustExec(ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
		"net.ipv6.conf.default.disable_ipv6=1")
	return ns
}

// Bridge creates a bridge in the hub namespace. name must be a valid interface name.
func (l *Lab) Bridge(name string) {
	l.t.Helper()
	l.MustExec(l.hub, "ip", "link", "add", name, "type", "bridge")
	l.MustExec(l.hub, "ip", "link", "set", name, "up")
}

// Attach joins namespace ns to bridge with a veth pair whose inside end is ifname with the
// address cidr ("10.77.1.10/24"), and returns the hub-side interface name (where a capture
// sees everything the host sends and receives).
func (l *Lab) Attach(ns, ifname, bridge, cidr string) string {
	l.t.Helper()
	l.mu.Lock()
	l.links++
	outside := fmt.Sprintf("v%s%d", l.prefix[len(l.prefix)-6:], l.links)
	inside := outside + "i"
	l.mu.Unlock()

	l.MustExec(l.hub, "ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
	l.MustExec(l.hub, "ip", "link", "set", inside, "netns", ns)
	l.MustExec(l.hub, "ip", "link", "set", outside, "master", bridge, "up")
	l.MustExec(ns, "ip", "link", "set", inside, "name", ifname)
	l.MustExec(ns, "ip", "addr", "add", cidr, "dev", ifname)
	l.MustExec(ns, "ip", "link", "set", ifname, "up")
	return outside
}

// MAC returns the MAC address of ifname in ns, lower-case.
func (l *Lab) MAC(ns, ifname string) string {
	l.t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/class/net", ifname, "address"))
	if ns != "" {
		b, err = l.Exec(ns, "cat", filepath.Join("/sys/class/net", ifname, "address"))
	}
	if err != nil {
		l.t.Fatalf("netlab: mac of %s in %s: %v", ifname, ns, err)
	}
	return strings.TrimSpace(string(b))
}

// Command returns a command that runs name with args inside ns, in its own process group.
func (l *Lab) Command(ns, name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// Exec runs a command inside ns and returns its combined output.
func (l *Lab) Exec(ns, name string, args ...string) ([]byte, error) {
	out, err := l.Command(ns, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), ns, err,
			bytes.TrimSpace(out))
	}
	return out, nil
}

// MustExec is Exec that fails the test on error.
func (l *Lab) MustExec(ns, name string, args ...string) []byte {
	l.t.Helper()
	out, err := l.Exec(ns, name, args...)
	if err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	return out
}

// Start starts a long-running command inside ns, logging its output to a file in the
// lab's directory (shown in the test log when the test fails). Close stops it.
func (l *Lab) Start(ns, label, name string, args ...string) *exec.Cmd {
	l.t.Helper()
	cmd := l.Command(ns, name, args...)
	return l.start(cmd, label)
}

func (l *Lab) start(cmd *exec.Cmd, label string) *exec.Cmd {
	l.t.Helper()
	logPath := filepath.Join(l.dir, label+".log")
	f, err := os.Create(logPath)
	if err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		l.t.Fatalf("netlab: start %s: %v", label, err)
	}
	f.Close()

	l.mu.Lock()
	l.procs = append(l.procs, cmd)
	l.mu.Unlock()
	l.t.Cleanup(func() {
		if l.t.Failed() {
			b, _ := os.ReadFile(logPath)
			l.t.Logf("netlab: %s output:\n%s", label, b)
		}
	})
	return cmd
}

// Stop stops one started command (SIGTERM to its process group, SIGKILL after 3 s) and
// waits for it.
func Stop(cmd *exec.Cmd) {
	if cmd.Process == nil || cmd.ProcessState != nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// Close stops every started process, kills what else runs in the namespaces, and deletes
// every namespace (which removes their interfaces and the bridges). It is idempotent and runs at test cleanup.
func (l *Lab) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	procs, namespaces := l.procs, l.namespaces
	l.mu.Unlock()

	for i := len(procs) - 1; i >= 0; i-- {
		Stop(procs[i])
	}
	for _, ns := range namespaces {
		killAll(ns)
	}
	for i := len(namespaces) - 1; i >= 0; i-- {
		if out, err := exec.Command("ip", "netns", "del", namespaces[i]).CombinedOutput(); err != nil {
			l.t.Errorf("netlab: delete namespace %s: %v: %s", namespaces[i], err, out)
		}
	}
}

// killAll kills whatever still runs inside ns, such as a daemon that software under test
// detached from its parent (an agent started with setsid by an installer).
func killAll(ns string) {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// Namespaces returns the names of the lab's namespaces, for tests of the lab itself.
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.namespaces...)
}

func (l *Lab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("netlab: ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// WaitTCP waits until something listens on addr ("10.77.1.10:104") inside ns.
func (l *Lab) WaitTCP(ns, addr string, timeout time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	port := addr[strings.LastIndex(addr, ":")+1:]
	for {
		out, _ := l.Exec(ns, "ss", "-Hltn", "sport = :"+port)
		if len(bytes.TrimSpace(out)) > 0 {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("netlab: nothing listens on %s in %s after %s", addr, ns, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Wrapper writes an executable script that runs binary inside ns with the script's
// arguments, for code that runs a tool (nmap) by path, and returns its path.
func (l *Lab) Wrapper(ns, binary string) string {
	l.t.Helper()
	path := filepath.Join(l.dir, filepath.Base(binary)+"-in-"+ns)
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", ns, binary)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	return path
}

// envInside marks a copy of the test binary that RunInside started in a namespace.
const envInside = "WARD_NETLAB_INSIDE"

// Inside reports whether this process is a copy RunInside started; tests meant to run
// only there skip otherwise.
func Inside() bool { return os.Getenv(envInside) != "" }

// RunInside runs the test named name of this test binary inside ns (so its sockets and
// children live there), with env added to the environment, and fails the calling test
// when it fails. The inner test's output goes to the test log.
func (l *Lab) RunInside(ns, name string, env ...string) {
	l.t.Helper()
	self, err := os.Executable()
	if err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	cmd := l.Command(ns, self, "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(append(os.Environ(), envInside+"=1"), env...)
	out, err := cmd.CombinedOutput()
	l.t.Logf("netlab: %s inside %s:\n%s", name, ns, out)
	if err != nil {
		l.t.Fatalf("netlab: %s inside %s: %v", name, ns, err)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+name)) {
		l.t.Fatalf("netlab: %s did not pass inside %s", name, ns)
	}
}
