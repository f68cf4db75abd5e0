package netlab

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// envServe names the environment variable that turns a copy of the test binary into one
// of the lab's small servers (see Main).
const envServe = "WARD_NETLAB_SERVE"

// serveSpec is what a copy of the test binary serves.
type serveSpec struct {
	Kind   string // "http", "mllp" or "chatter"
	Addr   string // listen address, or for chatter the address to send to
	Title  string // http: the page title naming a product
	Server string // http: the Server header
}

// Main turns the process into one of the lab's servers when it was started as one, and
// never returns then. Call it first in TestMain of every package that uses the lab.
func Main() {
	raw := os.Getenv(envServe)
	if raw == "" {
		return
	}
	var spec serveSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "netlab serve:", err)
		os.Exit(2)
	}
	var err error
	switch spec.Kind {
	case "http":
		err = serveHTTP(spec)
	case "mllp":
		err = serveMLLP(spec.Addr)
	case "chatter":
		err = chatter(spec.Addr)
	default:
		err = fmt.Errorf("unknown kind %q", spec.Kind)
	}
	fmt.Fprintln(os.Stderr, "netlab serve:", err)
	os.Exit(1)
}

// startSelf starts a copy of the test binary serving spec inside ns.
func (l *Lab) startSelf(ns, label string, spec serveSpec) *exec.Cmd {
	l.t.Helper()
	self, err := os.Executable()
	if err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	b, _ := json.Marshal(spec)
	cmd := l.Command(ns, self, "-test.run=^$")
	cmd.Env = append(os.Environ(), envServe+"="+string(b))
	return l.start(cmd, label)
}

// StartHTTP serves a page whose title names a product on addr inside ns.
func (l *Lab) StartHTTP(ns, addr, title, server string) {
	l.t.Helper()
	l.startSelf(ns, "http-"+ns, serveSpec{Kind: "http", Addr: addr, Title: title, Server: server})
	l.WaitTCP(ns, addr, 10*time.Second)
}

// StartMLLP starts an HL7 v2 MLLP listener stand-in on addr inside ns: it acknowledges
// every framed message with an ACK.
func (l *Lab) StartMLLP(ns, addr string) {
	l.t.Helper()
	l.startSelf(ns, "mllp-"+ns, serveSpec{Kind: "mllp", Addr: addr})
	l.WaitTCP(ns, addr, 10*time.Second)
}

// StartChatter makes the host in ns send a UDP datagram to addr every 300 ms, as a quiet
// device does with its periodic traffic: when addr is on its subnet and absent, the kernel
// broadcasts ARP requests for it, which a passive listener sees.
func (l *Lab) StartChatter(ns, addr string) {
	l.t.Helper()
	l.startSelf(ns, "chatter-"+ns, serveSpec{Kind: "chatter", Addr: addr})
}

func serveHTTP(spec serveSpec) error {
	page := fmt.Sprintf("<!DOCTYPE html><html><head><title>%s</title></head>"+
		"<body><h1>%s</h1></body></html>\n", spec.Title, spec.Title)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if spec.Server != "" {
			w.Header().Set("Server", spec.Server)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	})
	srv := &http.Server{Addr: spec.Addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// MLLP framing: a message starts with 0x0b and ends with 0x1c 0x0d.
const (
	mllpStart = 0x0b
	mllpEnd   = 0x1c
	mllpCR    = 0x0d
)

func serveMLLP(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go answerMLLP(c)
	}
}

func answerMLLP(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		msg, err := r.ReadBytes(mllpEnd)
		if err != nil {
			return
		}
		_, _ = r.ReadByte() // the trailing CR
		id := "0"
		if i := bytes.IndexByte(msg, mllpStart); i >= 0 {
			msg = msg[i+1:]
		}
		if f := strings.Split(string(msg), "|"); len(f) > 9 {
			id = f[9]
		}
		ack := "MSH|^~\\&|WARDLAB|LAB|||" + time.Now().Format("20060102150405") +
			"||ACK|" + id + "|P|2.5\rMSA|AA|" + id + "\r"
		if _, err := c.Write(append(append([]byte{mllpStart}, ack...), mllpEnd, mllpCR)); err != nil {
			return
		}
	}
}

func chatter(addr string) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	for {
		_, _ = c.Write([]byte("hello"))
		time.Sleep(300 * time.Millisecond)
	}
}

// SNMPAgent configures StartSNMPD.
type SNMPAgent struct {
	Addr      string // listen address, without port
	Community string // v2c read-only community
	User      string // v3 user with SHA authentication and AES privacy
	AuthPass  string
	PrivPass  string
	Name      string // sysName
	Descr     string // sysDescr
	ObjectID  string // sysObjectID, numeric; empty keeps net-snmp's own
}

// StartSNMPD starts Debian's snmpd inside ns answering v2c and v3 (authPriv) on UDP 161.
func (l *Lab) StartSNMPD(ns string, a SNMPAgent) {
	l.t.Helper()
	if _, err := exec.LookPath("snmpd"); err != nil {
		l.t.Skip("netlab: skipped: snmpd is not installed (make test-deps)")
	}
	dir := filepath.Join(l.dir, "snmpd-"+ns)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		l.t.Fatal(err)
	}
	conf := fmt.Sprintf(`agentAddress udp:%s:161
rocommunity %s default
createUser %s SHA "%s" AES "%s"
rouser %s priv
sysName %s
sysDescr %s
sysLocation Exam room 2
sysContact it@clinic.example
sysServices 72
`, a.Addr, a.Community, a.User, a.AuthPass, a.PrivPass, a.User, a.Name, a.Descr)
	if a.ObjectID != "" {
		conf += "sysObjectID " + a.ObjectID + "\n"
	}
	path := filepath.Join(dir, "snmpd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		l.t.Fatal(err)
	}

	cmd := l.Command(ns, "snmpd", "-f", "-Lo", "-C", "-c", path, "-p",
		filepath.Join(dir, "snmpd.pid"))
	cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+dir, "MIBS=")
	l.start(cmd, "snmpd-"+ns)
	l.waitUDP(ns, "161", 10*time.Second)
}

// StartSSHD starts OpenSSH's sshd on addr:22 inside ns with a fresh ed25519 host key
// (returned as the path of its public key) and key-only root login through
// authorizedKeys (a file path; it may not exist yet).
func (l *Lab) StartSSHD(ns, addr, authorizedKeys string) (hostPub string) {
	l.t.Helper()
	if _, err := exec.LookPath("sshd"); err != nil {
		l.t.Skip("netlab: skipped: sshd is not installed (make test-deps)")
	}
	conf, pub := l.sshdConfig(filepath.Join(l.dir, "sshd-"+ns), addr, authorizedKeys)
	_ = os.MkdirAll("/run/sshd", 0o755)
	l.Start(ns, "sshd-"+ns, "/usr/sbin/sshd", "-D", "-e", "-f", conf)
	l.WaitTCP(ns, addr+":22", 10*time.Second)
	return pub
}

// sshdConfig writes a host key and an sshd configuration for key-only root logins on
// addr:22 into dir, and returns the configuration's and the public host key's paths.
func (l *Lab) sshdConfig(dir, addr, authorizedKeys string) (conf, hostPub string) {
	l.t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		l.t.Fatal(err)
	}
	key := filepath.Join(dir, "host_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
		key).CombinedOutput(); err != nil {
		l.t.Fatalf("netlab: ssh-keygen: %v: %s", err, out)
	}
	text := fmt.Sprintf(`ListenAddress %s:22
HostKey %s
PidFile %s
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AuthorizedKeysFile %s
`, addr, key, filepath.Join(dir, "sshd.pid"), authorizedKeys)
	conf = filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		l.t.Fatal(err)
	}
	return conf, key + ".pub"
}

// StartStorescp starts dcmtk's storescp, a real DICOM storage listener, on port inside ns
// with the application entity title aet.
func (l *Lab) StartStorescp(ns, port, aet string) {
	l.t.Helper()
	if _, err := exec.LookPath("storescp"); err != nil {
		l.t.Skip("netlab: skipped: dcmtk's storescp is not installed (make test-deps)")
	}
	out := filepath.Join(l.dir, "storescp-"+ns)
	if err := os.MkdirAll(out, 0o700); err != nil {
		l.t.Fatal(err)
	}
	l.Start(ns, "storescp-"+ns, "storescp", "--aetitle", aet, "--output-directory", out, port)
	l.WaitTCP(ns, "0.0.0.0:"+port, 10*time.Second)
}

func (l *Lab) waitUDP(ns, port string, timeout time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, _ := l.Exec(ns, "ss", "-Hlun", "sport = :"+port)
		if len(bytes.TrimSpace(out)) > 0 {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("netlab: nothing listens on udp port %s in %s after %s", port, ns, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
