// Package e2e runs Ward as a user does: the real ward-controller, wardctl and ward-agent
// binaries as separate processes, talking real mTLS on loopback. Tests that need a process
// to die the hard way use SIGKILL, so what they check is what survives a crash.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
	badgerstore "github.com/wardsec/ward/controller/internal/store/badger"
)

// binDir holds the binaries built once for the whole package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ward-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := func() int {
		defer os.RemoveAll(dir)
		build := exec.Command("go", "build", "-o", dir,
			"github.com/wardsec/ward/controller/cmd/ward-controller",
			"github.com/wardsec/ward/controller/cmd/wardctl",
			"github.com/wardsec/ward/agent/cmd/ward-agent",
			"github.com/wardsec/ward/agent/internal/checks/checkstest/hosttree")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build binaries: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a running binary whose combined output is kept in a file and mirrored to t.Log on
// failure.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func start(t *testing.T, logPath, name string, args ...string) *proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill(syscall.SIGKILL)
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("--- %s log (%s) ---\n%s", name, logPath, tail(data, 60))
		}
	})
	return p
}

func tail(data []byte, lines int) []byte {
	parts := bytes.Split(data, []byte("\n"))
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return bytes.Join(parts, []byte("\n"))
}

// kill sends sig and waits for the process to exit.
func (p *proc) kill(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logLines returns the JSON log records of p whose "msg" is msg.
func (p *proc) logLines(msg string) []map[string]any {
	f, err := os.Open(p.log)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// installation is one controller data directory with its operator credentials.
type installation struct {
	t        *testing.T
	dir      string
	data     string
	addr     string
	httpAddr string
	interval time.Duration
	certTTL  time.Duration
	ctl      *proc
	restarts int
	// serveArgs are added to every `ward-controller serve` command line.
	serveArgs []string
}

func newInstallation(t *testing.T, interval time.Duration) *installation {
	t.Helper()
	dir := t.TempDir()
	in := &installation{t: t, dir: dir, data: filepath.Join(dir, "controller"),
		interval: interval}
	out, err := exec.Command(filepath.Join(binDir, "ward-controller"), "init",
		"--data-dir", in.data, "--trust-domain", "e2e.ward.test").CombinedOutput()
	if err != nil {
		t.Fatalf("ward-controller init: %v\n%s", err, out)
	}
	return in
}

// startController starts the controller, on the same ports as before after a restart, and
// waits for /readyz.
func (in *installation) startController() {
	t := in.t
	t.Helper()
	if in.addr == "" {
		in.addr, in.httpAddr = freeAddr(t), freeAddr(t)
	}
	args := []string{"serve", "--data-dir", in.data, "--listen", in.addr,
		"--metrics-listen", in.httpAddr, "--heartbeat-interval", in.interval.String()}
	if in.certTTL > 0 {
		args = append(args, "--cert-ttl", in.certTTL.String())
	}
	args = append(args, in.serveArgs...)
	in.ctl = start(t, filepath.Join(in.dir, fmt.Sprintf("controller-%d.log", in.restarts)),
		"ward-controller", args...)
	in.restarts++
	waitFor(t, 20*time.Second, "controller ready", func() bool {
		resp, err := http.Get("http://" + in.httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// wardctl runs wardctl as the admin and returns stdout; a non-zero exit fails the test.
func (in *installation) wardctl(args ...string) string {
	in.t.Helper()
	stdout, stderr, err := in.wardctlAs("admin", args...)
	if err != nil {
		in.t.Fatalf("wardctl %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout
}

// wardctlAs runs wardctl with the credentials of operator name.
func (in *installation) wardctlAs(name string, args ...string) (string, string, error) {
	cmd := exec.Command(filepath.Join(binDir, "wardctl"), args...)
	cmd.Env = append(os.Environ(),
		"WARD_CONTROLLER="+in.addr,
		"WARD_CERT="+filepath.Join(in.data, "operators", name, "cert.pem"),
		"WARD_KEY="+filepath.Join(in.data, "operators", name, "key.pem"),
		"WARD_CA="+filepath.Join(in.data, "ca.pem"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// token creates an enrollment token and returns the path of a file holding it.
func (in *installation) token(tenant string, extra ...string) string {
	in.t.Helper()
	secret := strings.TrimSpace(in.wardctl(append([]string{"token", "create", "--tenant",
		tenant}, extra...)...))
	f, err := os.CreateTemp(in.dir, "token-")
	if err != nil {
		in.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(secret + "\n"); err != nil {
		in.t.Fatal(err)
	}
	return f.Name()
}

// agentInfo is what `wardctl agent list -o json` reports of one agent.
type agentInfo struct {
	ID       string
	Tenant   string
	Hostname string
	Online   bool
	Revoked  bool
	AckedSeq uint64
}

func (in *installation) agents(tenant string) map[string]agentInfo {
	in.t.Helper()
	var raw []map[string]any
	out := in.wardctl("agent", "list", "--tenant", tenant, "-o", "json")
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		in.t.Fatalf("agent list json: %v\n%s", err, out)
	}
	res := make(map[string]agentInfo, len(raw))
	for _, r := range raw {
		a := agentInfo{
			ID: str(r["id"]), Tenant: str(r["tenant"]), Hostname: str(r["hostname"]),
			Online: r["online"] == true, Revoked: r["revoked"] == true,
		}
		if v, ok := r["acked_seq"]; ok {
			a.AckedSeq, _ = strconv.ParseUint(fmt.Sprint(v), 10, 64)
		}
		res[a.ID] = a
	}
	return res
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// agent is one enrolled ward-agent with its state directory.
type agent struct {
	in    *installation
	name  string
	state string
	id    string
	run   *proc
	runs  int
}

// enroll enrolls a new agent with the token file and returns it (not yet running).
func (in *installation) enroll(name, tokenFile string) *agent {
	in.t.Helper()
	a := &agent{in: in, name: name, state: filepath.Join(in.dir, name)}
	out, err := a.enrollCmd(tokenFile).CombinedOutput()
	if err != nil {
		in.t.Fatalf("ward-agent enroll %s: %v\n%s", name, err, out)
	}
	var st struct {
		AgentID string `json:"agent_id"`
	}
	data, err := os.ReadFile(filepath.Join(a.state, "agent.json"))
	if err != nil {
		in.t.Fatal(err)
	}
	if err := json.Unmarshal(data, &st); err != nil || st.AgentID == "" {
		in.t.Fatalf("agent.json of %s: %v %s", name, err, data)
	}
	a.id = st.AgentID
	return a
}

func (a *agent) enrollCmd(tokenFile string) *exec.Cmd {
	return exec.Command(filepath.Join(binDir, "ward-agent"), "enroll",
		"--controller", a.in.addr, "--token-file", tokenFile,
		"--ca-file", filepath.Join(a.in.data, "ca.pem"), "--state-dir", a.state)
}

// start runs the agent against its prepared host tree (never the real /: the agent
// evaluates and remediates the host under --host-root), writing a compliant one first
// unless the test prepared it.
func (a *agent) start() {
	t := a.in.t
	t.Helper()
	if _, err := os.Stat(a.hostRoot()); err != nil {
		a.prepareHost()
	}
	a.run = start(t, filepath.Join(a.in.dir, fmt.Sprintf("%s-%d.log", a.name, a.runs)),
		"ward-agent", "run", "--state-dir", a.state, "--host-root", a.hostRoot(),
		"--log-level", "debug")
	a.runs++
}

// hostRoot is the agent's prepared host tree.
func (a *agent) hostRoot() string { return a.state + "-host" }

// prepareHost writes the agent's host tree: the compliant Debian server of checkstest,
// with hosttree's extra flags (for example --password-ssh).
func (a *agent) prepareHost(flags ...string) {
	a.in.t.Helper()
	args := append(append([]string{}, flags...), a.hostRoot())
	out, err := exec.Command(filepath.Join(binDir, "hosttree"), args...).CombinedOutput()
	if err != nil {
		a.in.t.Fatalf("hosttree %v: %v\n%s", args, err, out)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// storedMessages opens the stopped controller's store and returns each agent's stored
// sequence numbers by message type.
func (in *installation) storedMessages(tenant, agentID string) []store.Message {
	in.t.Helper()
	st, err := badgerstore.Open(filepath.Join(in.data, "db"),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		in.t.Fatalf("open store: %v", err)
	}
	defer st.Close()
	msgs, err := st.ListMessages(context.Background(), tenant, agentID, 0, 1<<20)
	if err != nil {
		in.t.Fatal(err)
	}
	return msgs
}

// checkExactlyOnce asserts that msgs hold every sequence number from 1 to want exactly
// once, in order, and returns how many of them are heartbeats.
func checkExactlyOnce(t *testing.T, who string, msgs []store.Message, want uint64) int {
	t.Helper()
	seen := make(map[uint64]int)
	heartbeats := 0
	for _, m := range msgs {
		seen[m.Seq]++
		if m.Type == "heartbeat" {
			heartbeats++
		}
	}
	for seq := uint64(1); seq <= want; seq++ {
		switch seen[seq] {
		case 1:
		case 0:
			t.Errorf("%s: seq %d never stored", who, seq)
		default:
			t.Errorf("%s: seq %d stored %d times", who, seq, seen[seq])
		}
	}
	if uint64(len(msgs)) != want {
		t.Errorf("%s: %d messages stored, want %d (1..%d)", who, len(msgs), want, want)
	}
	return heartbeats
}

// metricValue returns the value of one series (name with labels, exactly as exposed) from
// the controller's /metrics, or -1 when it is absent.
func metricValue(t *testing.T, in *installation, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + in.httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("get metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	return -1
}
