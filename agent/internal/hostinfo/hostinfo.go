// Package hostinfo gathers the facts an agent reports about its host: name, operating
// system, kernel, machine id and addresses. Files are read under a configurable root so that
// tests and demos can run against a prepared tree.
package hostinfo

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Facts describes a host. A field the host does not provide is empty.
type Facts struct {
	Hostname  string
	OS        string // os-release ID, for example "debian"; runtime.GOOS when unknown
	OSVersion string // os-release VERSION_ID, for example "12"
	Kernel    string // kernel release, as `uname -r` prints it
	Arch      string // runtime.GOARCH
	MachineID string // /etc/machine-id
	Addresses []string
}

// Collect reads the facts of the host whose file system is mounted at root ("/" for the
// real host). Files under root win; the running system fills in what they lack. Addresses
// are always the running system's. Collect never fails: what it cannot read stays empty.
func Collect(root string) Facts {
	if root == "" {
		root = "/"
	}
	f := Facts{Arch: runtime.GOARCH}

	rel := parseOSRelease(readFile(root, "etc/os-release"))
	if len(rel) == 0 {
		rel = parseOSRelease(readFile(root, "usr/lib/os-release"))
	}
	f.OS, f.OSVersion = rel["ID"], rel["VERSION_ID"]
	if f.OS == "" {
		f.OS = runtime.GOOS
	}

	f.MachineID = readLine(root, "etc/machine-id")
	f.Hostname = readLine(root, "etc/hostname")
	if f.Hostname == "" {
		f.Hostname, _ = os.Hostname()
	}
	f.Kernel = readLine(root, "proc/sys/kernel/osrelease")
	if f.Kernel == "" {
		f.Kernel = kernelRelease()
	}
	f.Addresses = addresses()
	return f
}

func readFile(root, rel string) []byte {
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return nil
	}
	return data
}

func readLine(root, rel string) string {
	line, _, _ := bytes.Cut(readFile(root, rel), []byte("\n"))
	return strings.TrimSpace(string(line))
}

// parseOSRelease parses os-release(5): KEY=value lines, values optionally quoted.
func parseOSRelease(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[strings.TrimSpace(k)] = v
	}
	return out
}

// addresses returns the unicast addresses of the running system's interfaces that are up,
// loopback and link-local excluded, sorted.
func addresses() []string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []string
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || !ipn.IP.IsGlobalUnicast() {
				continue
			}
			out = append(out, ipn.IP.String())
		}
	}
	sort.Strings(out)
	return out
}

// Proto converts the facts to their wire form, adding the agent's version and roles.
func (f Facts) Proto(agentVersion string, roles []string) *wardv1.HostFacts {
	return &wardv1.HostFacts{
		Hostname:     f.Hostname,
		Os:           f.OS,
		OsVersion:    f.OSVersion,
		Kernel:       f.Kernel,
		Arch:         f.Arch,
		MachineId:    f.MachineID,
		Addresses:    f.Addresses,
		AgentVersion: agentVersion,
		Roles:        roles,
	}
}
