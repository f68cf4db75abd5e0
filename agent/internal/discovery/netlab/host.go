package netlab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// hostDirs are the system directories an isolated host sees through its own
// copy-on-write layer: what an installer writes there stays in the lab's directory.
var hostDirs = []string{"/etc", "/usr", "/var", "/opt"}

// Host is a namespace that behaves like a separate machine for software installed on it:
// its processes see the machine's /etc, /usr, /var and /opt through an overlay whose
// writable layer lives in the lab's directory, and a /run of their own. Nothing they
// write there reaches the machine running the test.
type Host struct {
	NS    string // the network namespace
	Upper string // the overlays' writable layers, one directory per overlaid path
}

// Path returns where the file the host sees at path (absolute) is kept when the host has
// written or changed it.
func (h Host) Path(path string) string {
	return filepath.Join(h.Upper, strings.TrimPrefix(path, "/"))
}

// StartSSHDHost starts sshd on addr:22 inside ns as an isolated Host (see Host), with
// hosts as the host's /etc/hosts, and returns the host and the path of sshd's public
// host key. Everything sshd's sessions start (an installed agent too) inherits the
// isolation; Close kills it with the namespace's other processes.
func (l *Lab) StartSSHDHost(ns, addr, authorizedKeys, hosts string) (Host, string) {
	l.t.Helper()
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		l.t.Skip("netlab: skipped: sshd is not installed (make test-deps)")
	}
	h := Host{NS: ns, Upper: filepath.Join(l.dir, "host-"+ns, "upper")}
	work := filepath.Join(l.dir, "host-"+ns, "work")
	var script strings.Builder
	script.WriteString("set -e\n")
	for _, d := range hostDirs {
		up, wk := h.Path(d), filepath.Join(work, strings.TrimPrefix(d, "/"))
		for _, p := range []string{up, wk} {
			if err := os.MkdirAll(p, 0o755); err != nil {
				l.t.Fatalf("netlab: %v", err)
			}
		}
		fmt.Fprintf(&script, "mount -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s\n",
			d, up, wk, d)
	}
	if err := os.WriteFile(h.Path("/etc/hosts"), []byte(hosts), 0o644); err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	dir := filepath.Join(l.dir, "sshd-"+ns)
	conf, pub := l.sshdConfig(dir, addr, authorizedKeys)
	script.WriteString("mount -t tmpfs -o mode=0755 tmpfs /run\nmkdir -p /run/sshd\n")
	fmt.Fprintf(&script, "exec /usr/sbin/sshd -D -e -f %s\n", conf)

	l.Start(ns, "sshd-"+ns, "unshare", "--mount", "--propagation", "private",
		"sh", "-c", script.String())
	l.WaitTCP(ns, addr+":22", 10*time.Second)
	return h, pub
}
