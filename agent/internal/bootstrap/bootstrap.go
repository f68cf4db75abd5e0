// Package bootstrap turns a discovered server into an enrolled Ward agent over SSH, from
// the collector: it verifies the server's host key (the collector's known_hosts, or trust
// on first use recorded there and reported as evidence), detects the architecture, copies
// the matching agent binary, writes the agent's configuration with the controller's trust
// bundle and a fresh one-time enrollment token, installs the hardened systemd unit that
// ships in packaging/systemd and starts it. The new agent enrolls itself with the token.
//
// The layout on the target is the one the .deb and .rpm packages install:
//
//	/usr/bin/ward-agent                         the binary
//	/usr/lib/ward-agent/enroll-once             enrolls unless already enrolled
//	/etc/ward/agent.env, ca.pem                 configuration and trust bundle
//	/etc/ward/enrollment-token (0600)           removed once the agent has enrolled
//	/etc/systemd/system/ward-agent.service      the packaged unit
//	/var/lib/ward-agent/                        the agent's state directory (0700)
//
// Where systemd is not running (a container, or the test network's namespaces), the
// fallback start runs enroll-once and then `setsid nohup ward-agent run` with its output in
// /var/log/ward-agent.log and its process id in /run/ward-agent.pid. Such an agent is not
// restarted after a reboot: install systemd, or start it from the host's own init.
//
// Every step is idempotent and the whole bootstrap is resumable: a binary with the same
// SHA-256 is not copied again, unchanged files are not rewritten, an enrolled agent gets
// no new token, a running agent is not restarted. A failure is a *StepError naming the
// step and the reason. A host key that differs from known_hosts stops the bootstrap
// before anything is written to the target.
//
// The SSH private key is the collector's own (Config.KeyPath); the controller never holds
// it. The token is written through the SSH channel's standard input or sftp, never on a
// command line, and never logged.
package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/wardsec/ward/pkg/logkey"
)

// Step names, as StepError.Step and Step.Name carry them.
const (
	StepConnect   = "connect"   // SSH connection and host key verification
	StepDetect    = "detect"    // architecture, user, init system
	StepCopy      = "copy"      // the agent binary
	StepConfigure = "configure" // agent.env, ca.pem, token, enroll-once
	StepInstall   = "install"   // the systemd unit (nothing for the fallback)
	StepStart     = "start"     // enrollment and start
	StepVerify    = "verify"    // enrolled and running; token removed
)

// Init systems, as Result.Init and Target.Init name them.
const (
	InitAuto     = ""         // systemd when it runs on the target, else the fallback
	InitSystemd  = "systemd"  // the packaged unit
	InitFallback = "fallback" // setsid nohup, see the package documentation
)

// Paths on the target, relative to Target.Root.
const (
	BinaryPath     = "usr/bin/ward-agent"
	EnrollOncePath = "usr/lib/ward-agent/enroll-once"
	EnvPath        = "etc/ward/agent.env"
	CAPath         = "etc/ward/ca.pem"
	TokenPath      = "etc/ward/enrollment-token"
	UnitPath       = "etc/systemd/system/ward-agent.service"
	StatePath      = "var/lib/ward-agent"
	LogPath        = "var/log/ward-agent.log"
	PIDPath        = "run/ward-agent.pid"
)

//go:embed assets/ward-agent.service
var unitFile string

//go:embed assets/enroll-once
var enrollOnce []byte

// Config is the collector's side of every bootstrap.
type Config struct {
	// KeyPath is the collector's SSH private key (OpenSSH or PEM, unencrypted). Required.
	KeyPath string
	// KnownHostsPath is the collector's known_hosts file; it is created when missing.
	// Required.
	KnownHostsPath string
	// TrustOnFirstUse accepts the key of a host that known_hosts does not list and
	// records it there (Result.HostKey.Trust says so). A host listed with another key is
	// refused either way.
	TrustOnFirstUse bool
	// BinaryDir holds agent binaries named ward-agent-linux-<GOARCH>. When it has none for
	// the target's architecture and that architecture is the collector's own, the
	// collector's own executable is copied.
	BinaryDir string
	// Controller is the controller address the new agent uses unless the target names
	// one; CAFile the trust bundle it pins unless the target brings one.
	Controller string
	CAFile     string
	// DialTimeout bounds the SSH connection; zero means 15 s.
	DialTimeout time.Duration
	// VerifyTimeout bounds the wait for the agent to enroll and run; zero means 60 s.
	VerifyTimeout time.Duration
	// CommandTimeout bounds each remote command (the enrollment and the binary's copy
	// included); zero means 2 minutes.
	CommandTimeout time.Duration
	// Log receives the steps; nil discards them.
	Log *slog.Logger
}

// Target is one server to bootstrap.
type Target struct {
	// Address is "host" or "host:port" (port 22 by default). Required.
	Address string
	// User logs in; empty means root. The bootstrap needs root on the target.
	User string
	// Token is the one-time enrollment token. Required unless the target is enrolled.
	Token string
	// Controller and CA (PEM) override the Config's.
	Controller string
	CA         []byte
	// Role is the agent's role; empty means "host".
	Role string
	// Root is the directory the layout is installed under; empty means "/". Tests and
	// demos install under a scratch directory.
	Root string
	// Init forces an init system; InitAuto detects it.
	Init string
}

// Step is one step's outcome.
type Step struct {
	Name    string
	Changed bool   // the step changed the target
	Detail  string // what it found or did
}

// Result is what a bootstrap did, for the controller's evidence.
type Result struct {
	Address string
	HostKey HostKey
	Arch    string // uname -m
	Init    string // InitSystemd or InitFallback
	Steps   []Step
}

// StepError is a failed bootstrap: which step, and why.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return "bootstrap " + e.Step + ": " + e.Err.Error() }

func (e *StepError) Unwrap() error { return e.Err }

// Run bootstraps t and returns what it did; on failure the result holds the steps done
// and the error is a *StepError.
func Run(ctx context.Context, cfg Config, t Target) (*Result, error) {
	b, err := newRun(cfg, t)
	if err != nil {
		return &Result{Address: t.Address}, &StepError{Step: StepConnect, Err: err}
	}
	res := b.res
	if err := b.connect(ctx); err != nil {
		return res, &StepError{Step: StepConnect, Err: err}
	}
	defer b.r.Close()
	b.step(StepConnect, false, fmt.Sprintf("%s %s (%s)", res.HostKey.Type,
		res.HostKey.Fingerprint, res.HostKey.Trust))

	for _, s := range []struct {
		name string
		fn   func(context.Context) (bool, string, error)
	}{
		{StepDetect, b.detect}, {StepCopy, b.copyBinary}, {StepConfigure, b.configure},
		{StepInstall, b.install}, {StepStart, b.start}, {StepVerify, b.verify},
	} {
		changed, detail, err := s.fn(ctx)
		if err != nil {
			b.log.Warn("bootstrap step failed", "step", s.name, logkey.Error, err.Error())
			return res, &StepError{Step: s.name, Err: err}
		}
		b.step(s.name, changed, detail)
	}
	return res, nil
}

// run is one bootstrap in progress.
type run struct {
	cfg     Config
	t       Target
	log     *slog.Logger
	res     *Result
	r       *remote
	enroled bool // the state directory holds a certificate
	ca      []byte
}

func newRun(cfg Config, t Target) (*run, error) {
	if cfg.KeyPath == "" || cfg.KnownHostsPath == "" {
		return nil, errors.New("no SSH key or known_hosts configured on the collector")
	}
	if t.Address == "" {
		return nil, errors.New("no target address")
	}
	if _, _, err := net.SplitHostPort(t.Address); err != nil {
		t.Address = net.JoinHostPort(t.Address, "22")
	}
	if t.User == "" {
		t.User = "root"
	}
	if t.Role == "" {
		t.Role = "host"
	}
	if t.Root == "" {
		t.Root = "/"
	}
	if !path.IsAbs(t.Root) {
		return nil, fmt.Errorf("install root %q is not absolute", t.Root)
	}
	if t.Controller == "" {
		t.Controller = cfg.Controller
	}
	if t.Controller == "" {
		return nil, errors.New("no controller address for the new agent")
	}
	switch t.Init {
	case InitAuto, InitSystemd, InitFallback:
	default:
		return nil, fmt.Errorf("unknown init %q", t.Init)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 15 * time.Second
	}
	if cfg.VerifyTimeout <= 0 {
		cfg.VerifyTimeout = 60 * time.Second
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = 2 * time.Minute
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ca := t.CA
	if len(ca) == 0 {
		if cfg.CAFile == "" {
			return nil, errors.New("no trust bundle for the new agent")
		}
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read trust bundle: %w", err)
		}
		ca = b
	}
	return &run{cfg: cfg, t: t, ca: ca, log: log.With(logkey.Addr, t.Address),
		res: &Result{Address: t.Address}}, nil
}

func (b *run) step(name string, changed bool, detail string) {
	b.res.Steps = append(b.res.Steps, Step{Name: name, Changed: changed, Detail: detail})
	b.log.Info("bootstrap step", "step", name, "changed", changed, "detail", detail)
}

// p returns a target path under the install root.
func (b *run) p(rel string) string { return path.Join(b.t.Root, rel) }

func (b *run) connect(ctx context.Context) error {
	keyPEM, err := os.ReadFile(b.cfg.KeyPath)
	if err != nil {
		return fmt.Errorf("read the collector's SSH key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		return fmt.Errorf("parse the collector's SSH key: %w", err)
	}
	check, err := hostKeyChecker(b.cfg.KnownHostsPath, b.cfg.TrustOnFirstUse, &b.res.HostKey)
	if err != nil {
		return err
	}
	conf := &ssh.ClientConfig{User: b.t.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: check, Timeout: b.cfg.DialTimeout}

	dctx, cancel := context.WithTimeout(ctx, b.cfg.DialTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", b.t.Address)
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(b.cfg.DialTimeout))
	c, chans, reqs, err := ssh.NewClientConn(conn, b.t.Address, conf)
	if err != nil {
		conn.Close()
		return err
	}
	_ = conn.SetDeadline(time.Time{})
	b.r = newRemote(ssh.NewClient(c, chans, reqs), b.cfg.CommandTimeout)
	return nil
}

// goarch maps uname -m to Go's architecture names.
var goarch = map[string]string{
	"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
	"armv7l": "arm", "armv6l": "arm", "i686": "386", "i386": "386",
	"riscv64": "riscv64", "ppc64le": "ppc64le", "s390x": "s390x",
}

func (b *run) detect(ctx context.Context) (bool, string, error) {
	out, err := b.r.run(ctx, "uname -s; uname -m; id -u; "+
		"if [ -d /run/systemd/system ]; then echo systemd; else echo none; fi; "+
		"if [ -e "+q(b.p(StatePath+"/cert.pem"))+" ]; then echo enrolled; else echo new; fi", nil)
	if err != nil {
		return false, "", err
	}
	f := strings.Fields(out)
	if len(f) != 5 {
		return false, "", fmt.Errorf("unexpected answer %q", out)
	}
	if f[0] != "Linux" {
		return false, "", fmt.Errorf("%s is not supported (Linux only)", f[0])
	}
	if f[2] != "0" {
		return false, "", fmt.Errorf("user %s is uid %s, not root", b.t.User, f[2])
	}
	b.res.Arch = f[1]
	b.res.Init = b.t.Init
	if b.res.Init == InitAuto {
		b.res.Init = InitFallback
		if f[3] == "systemd" {
			b.res.Init = InitSystemd
		}
	}
	if b.res.Init == InitSystemd && f[3] != "systemd" {
		return false, "", errors.New("systemd is not running on the target")
	}
	b.enroled = f[4] == "enrolled"
	return false, fmt.Sprintf("%s %s, init %s, %s", f[0], f[1], b.res.Init, f[4]), nil
}

// localBinary returns the agent binary for the target's architecture.
func (b *run) localBinary() (string, error) {
	arch, ok := goarch[b.res.Arch]
	if !ok {
		return "", fmt.Errorf("architecture %s is not supported", b.res.Arch)
	}
	if b.cfg.BinaryDir != "" {
		p := filepath.Join(b.cfg.BinaryDir, "ward-agent-linux-"+arch)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if arch == runtime.GOARCH {
		return os.Executable()
	}
	return "", fmt.Errorf("no agent binary for %s (%s): put ward-agent-linux-%s in %s",
		b.res.Arch, arch, arch, b.cfg.BinaryDir)
}

func (b *run) copyBinary(ctx context.Context) (bool, string, error) {
	local, err := b.localBinary()
	if err != nil {
		return false, "", err
	}
	data, err := os.ReadFile(local)
	if err != nil {
		return false, "", err
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	dst := b.p(BinaryPath)
	out, _ := b.r.run(ctx, "sha256sum "+q(dst)+" 2>/dev/null || true", nil)
	if strings.HasPrefix(strings.TrimSpace(out), want) {
		return false, "same binary already installed (sha256 " + want[:12] + ")", nil
	}
	if err := b.r.writeFile(ctx, dst, data, 0o755); err != nil {
		return false, "", err
	}
	return true, fmt.Sprintf("%d bytes, sha256 %s", len(data), want[:12]), nil
}

// envFile is the agent's settings, in the format of packaging/config/agent.env.
func (b *run) envFile() []byte {
	var s strings.Builder
	s.WriteString("# Written by the Ward collector's SSH bootstrap.\n")
	for _, kv := range [][2]string{
		{"WARD_CONTROLLER", b.t.Controller}, {"WARD_CA_FILE", b.p(CAPath)},
		{"WARD_TOKEN_FILE", b.p(TokenPath)}, {"WARD_ROLE", b.t.Role},
		{"WARD_HOST_ROOT", "/"}, {"WARD_LOG_LEVEL", "info"},
		{"WARD_SPOOL_MAX_BYTES", "67108864"}, {"WARD_AGENT_BIN", b.p(BinaryPath)},
	} {
		fmt.Fprintf(&s, "%s=%s\n", kv[0], kv[1])
	}
	return []byte(s.String())
}

// ensureFile writes data to rel unless it already holds exactly data.
func (b *run) ensureFile(ctx context.Context, rel string, data []byte,
	mode os.FileMode) (bool, error) {
	sum := sha256.Sum256(data)
	out, _ := b.r.run(ctx, "sha256sum "+q(b.p(rel))+" 2>/dev/null || true", nil)
	if strings.HasPrefix(strings.TrimSpace(out), hex.EncodeToString(sum[:])) {
		return false, nil
	}
	if err := b.r.writeFile(ctx, b.p(rel), data, mode); err != nil {
		return false, fmt.Errorf("write %s: %w", b.p(rel), err)
	}
	return true, nil
}

func (b *run) configure(ctx context.Context) (bool, string, error) {
	changed := false
	var wrote []string
	for _, f := range []struct {
		rel  string
		data []byte
		mode os.FileMode
	}{
		{EnvPath, b.envFile(), 0o644}, {CAPath, b.ca, 0o644},
		{EnrollOncePath, enrollOnce, 0o755},
	} {
		c, err := b.ensureFile(ctx, f.rel, f.data, f.mode)
		if err != nil {
			return changed, "", err
		}
		if c {
			changed = true
			wrote = append(wrote, f.rel)
		}
	}
	if b.enroled {
		return changed, describe(wrote, "already enrolled: no token written"), nil
	}
	if b.t.Token == "" {
		return changed, "", errors.New("not enrolled and no enrollment token given")
	}
	if err := b.r.writeFile(ctx, b.p(TokenPath), []byte(b.t.Token+"\n"), 0o600); err != nil {
		return changed, "", fmt.Errorf("write the token: %w", err)
	}
	if _, err := b.r.run(ctx, "mkdir -p -m 0700 "+q(b.p(StatePath)), nil); err != nil {
		return true, "", err
	}
	return true, describe(append(wrote, TokenPath), ""), nil
}

func describe(wrote []string, extra string) string {
	s := "unchanged"
	if len(wrote) > 0 {
		s = "wrote " + strings.Join(wrote, ", ")
	}
	if extra != "" {
		s += "; " + extra
	}
	return s
}

// unit returns the packaged unit, its paths moved under the install root.
func (b *run) unit() []byte {
	u := unitFile
	if b.t.Root != "/" {
		for _, rel := range []string{BinaryPath, EnrollOncePath, EnvPath, StatePath} {
			u = strings.ReplaceAll(u, "/"+rel, b.p(rel))
		}
	}
	return []byte(u)
}

func (b *run) install(ctx context.Context) (bool, string, error) {
	if b.res.Init != InitSystemd {
		return false, "no systemd: fallback start, not restarted after a reboot", nil
	}
	changed, err := b.ensureFile(ctx, UnitPath, b.unit(), 0o644)
	if err != nil {
		return false, "", err
	}
	if _, err := b.r.run(ctx, "systemctl daemon-reload && systemctl enable ward-agent.service",
		nil); err != nil {
		return changed, "", err
	}
	return changed, "unit " + b.p(UnitPath) + " enabled", nil
}

func (b *run) start(ctx context.Context) (bool, string, error) {
	if b.res.Init == InitSystemd {
		out, _ := b.r.run(ctx, "systemctl is-active ward-agent.service || true", nil)
		if strings.TrimSpace(out) == "active" {
			return false, "already running", nil
		}
		if _, err := b.r.run(ctx, "systemctl restart ward-agent.service", nil); err != nil {
			return false, "", err
		}
		return true, "systemctl restart ward-agent.service", nil
	}

	if b.runningFallback(ctx) {
		return false, "already running", nil
	}
	env := "set -a && . " + q(b.p(EnvPath)) + " && set +a && "
	if _, err := b.r.run(ctx, env+q(b.p(EnrollOncePath))+" "+q(b.p(StatePath)), nil); err != nil {
		return false, "", fmt.Errorf("enroll: %w", err)
	}
	// Only the agent goes to the background, detached from the session (its own session,
	// no terminal, every descriptor redirected), so that the SSH command returns.
	cmd := env + "mkdir -p " + q(path.Dir(b.p(LogPath))) + " " + q(path.Dir(b.p(PIDPath))) +
		" && cd / && { setsid nohup " + q(b.p(BinaryPath)) + " run --state-dir " +
		q(b.p(StatePath)) + ` --controller "$WARD_CONTROLLER" --host-root "$WARD_HOST_ROOT"` +
		` --log-level "$WARD_LOG_LEVEL" --spool-max-bytes "$WARD_SPOOL_MAX_BYTES"` +
		" </dev/null >>" + q(b.p(LogPath)) + " 2>&1 & echo $! > " + q(b.p(PIDPath)) + "; }"
	if _, err := b.r.run(ctx, cmd, nil); err != nil {
		return false, "", err
	}
	return true, "enrolled; started with setsid nohup, log " + b.p(LogPath), nil
}

// runningFallback reports whether the pid file names a live ward-agent.
func (b *run) runningFallback(ctx context.Context) bool {
	out, err := b.r.run(ctx, "pid=$(cat "+q(b.p(PIDPath))+" 2>/dev/null) && "+
		`[ -n "$pid" ] && tr '\0' ' ' < /proc/$pid/cmdline`, nil)
	return err == nil && strings.Contains(out, b.p(BinaryPath)+" run")
}

func (b *run) verify(ctx context.Context) (bool, string, error) {
	deadline := time.Now().Add(b.cfg.VerifyTimeout)
	cert := q(b.p(StatePath + "/cert.pem"))
	for {
		running := false
		if b.res.Init == InitSystemd {
			out, _ := b.r.run(ctx, "systemctl is-active ward-agent.service || true", nil)
			running = strings.TrimSpace(out) == "active"
		} else {
			running = b.runningFallback(ctx)
		}
		_, err := b.r.run(ctx, "test -s "+cert, nil)
		if running && err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			tail, _ := b.r.run(ctx, "tail -n 5 "+q(b.p(LogPath))+" 2>/dev/null || true", nil)
			return false, "", fmt.Errorf("agent not running and enrolled after %s (running %t, "+
				"enrolled %t): %s", b.cfg.VerifyTimeout, running, err == nil,
				strings.TrimSpace(tail))
		}
		time.Sleep(500 * time.Millisecond)
	}
	out, err := b.r.run(ctx, "if [ -e "+q(b.p(TokenPath))+" ]; then rm -f "+q(b.p(TokenPath))+
		" && echo removed; fi", nil)
	if err != nil {
		return false, "", fmt.Errorf("remove the used token: %w", err)
	}
	removed := strings.TrimSpace(out) == "removed"
	detail := "enrolled and running"
	if removed {
		detail += "; used token removed"
	}
	return removed, detail, nil
}

// sameBytes is used by tests of the embedded assets.
func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) }
