package deploytest

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardsec/ward/deploytest/internal/unitfile"
)

const nixRoot = "../nix"

// nixInstantiate runs nix-instantiate with the options that make it work without a Nix
// daemon, skipping the test where Nix is not installed (`make test-deps` installs it).
func nixInstantiate(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	bin, err := exec.LookPath("nix-instantiate")
	if err != nil {
		t.Skip("nix-instantiate is not installed (make test-deps installs Debian's nix-bin)")
	}
	all := append([]string{"--option", "build-users-group", ""}, args...)
	cmd := exec.Command(bin, all...)
	cmd.Env = append(cmd.Environ(), "NIX_REMOTE=", "NIX_PATH=")
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return out, fmt.Errorf("%v: %s", err, ee.Stderr)
	}
	return out, err
}

// TestNixParse checks the syntax of every .nix file, the flake and the VM test included
// (they need nixpkgs to evaluate).
func TestNixParse(t *testing.T) {
	var files []string
	filepath.WalkDir(nixRoot, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".nix") {
			files = append(files, path)
		}
		return err
	})
	for _, want := range []string{"flake.nix", "package.nix", "modules/ward-agent.nix",
		"modules/ward-controller.nix", "tests/agent-online.nix"} {
		if !contains(files, filepath.Join(nixRoot, want)) {
			t.Errorf("nix/%s is missing", want)
		}
	}
	for _, f := range files {
		if _, err := nixInstantiate(t, "--parse", f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// evaluation is what nix/tests/eval.nix returns.
type evaluation struct {
	Options    []string `json:"options"`
	Assertions []struct {
		Assertion bool   `json:"assertion"`
		Message   string `json:"message"`
	} `json:"assertions"`
	Service *struct {
		WantedBy      []string          `json:"wantedBy"`
		Environment   map[string]string `json:"environment"`
		ServiceConfig map[string]any    `json:"serviceConfig"`
		UnitConfig    map[string]any    `json:"unitConfig"`
	} `json:"service"`
	Users         []string `json:"users"`
	FirewallPorts []int    `json:"firewallPorts"`
}

// failed returns the messages of the failed assertions.
func (e *evaluation) failed() []string {
	var out []string
	for _, a := range e.Assertions {
		if !a.Assertion {
			out = append(out, a.Message)
		}
	}
	return out
}

// evalModule evaluates a module of nix/modules with stub lib and pkgs and settings
// written as a Nix attribute set.
func evalModule(t *testing.T, service, settings string) *evaluation {
	t.Helper()
	module, _ := filepath.Abs(filepath.Join(nixRoot, "modules", service+".nix"))
	out, err := nixInstantiate(t, "--eval", "--strict", "--json",
		filepath.Join(nixRoot, "tests/eval.nix"), "--arg", "module", module,
		"--argstr", "service", service, "--arg", "settings", settings)
	if err != nil {
		t.Fatalf("evaluate %s with %s: %v", service, settings, err)
	}
	var e evaluation
	if err := json.Unmarshal(out, &e); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	return &e
}

// unitFromNix renders a NixOS serviceConfig as a unit, the way NixOS writes it: true as
// yes, lists as repeated keys.
func unitFromNix(serviceConfig map[string]any) unitfile.Unit {
	s := map[string][]string{}
	for k, v := range serviceConfig {
		switch v := v.(type) {
		case bool:
			s[k] = []string{map[bool]string{true: "yes", false: "no"}[v]}
		case []any:
			for _, x := range v {
				s[k] = append(s[k], fmt.Sprint(x))
			}
		default:
			s[k] = []string{fmt.Sprint(v)}
		}
	}
	return unitfile.Unit{"Service": s}
}

// commandLine turns a NixOS ExecStart (shell-quoted words, store paths) into the
// packaged form, /usr/bin/NAME ARGS.
func commandLine(execStart, name string) string {
	words := strings.Fields(strings.ReplaceAll(execStart, "'", ""))
	if len(words) > 0 && strings.HasSuffix(words[0], "/bin/"+name) {
		words[0] = "/usr/bin/" + name
	}
	return strings.Join(words, " ")
}

const agentSettings = `{ enable = true; controller = "ward.example.test:7443";
	caFile = "/etc/ward/ca.pem"; enrollmentTokenFile = "/run/keys/ward-token"; %s }`

func TestNixAgentModule(t *testing.T) {
	tests := []struct {
		name      string
		extra     string
		role      string
		families  []string
		caps      []string
		wantStart []string
	}{
		{name: "host", role: "host",
			families: []string{"AF_INET", "AF_INET6", "AF_UNIX"}},
		{name: "collector", extra: `roles = [ "collector" ]; logLevel = "debug";`,
			role:      "collector",
			families:  []string{"AF_INET", "AF_INET6", "AF_UNIX", "AF_PACKET", "AF_NETLINK"},
			caps:      []string{"CAP_NET_RAW", "CAP_NET_ADMIN"},
			wantStart: []string{"--log-level debug"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := evalModule(t, "ward-agent", fmt.Sprintf(agentSettings, tt.extra))
			if failed := e.failed(); len(failed) > 0 {
				t.Fatalf("assertions failed: %q", failed)
			}
			u := unitFromNix(e.Service.ServiceConfig)
			checkHardening(t, "nixos ward-agent", u)

			if got := unitfile.List("Service", "RestrictAddressFamilies", u); !sameSet(got,
				tt.families...) {
				t.Errorf("RestrictAddressFamilies = %q, want %q", got, tt.families)
			}
			if got := unitfile.List("Service", "CapabilityBoundingSet", u); !sameSet(got,
				tt.caps...) {
				t.Errorf("CapabilityBoundingSet = %q, want %q", got, tt.caps)
			}
			if got, _ := u.Get("Service", "ReadWritePaths"); got != "/var/lib/ward-agent" {
				t.Errorf("ReadWritePaths = %q", got)
			}
			if got := e.Service.Environment["WARD_ROLE"]; got != tt.role {
				t.Errorf("enrollment role = %q, want %q", got, tt.role)
			}

			start, _ := u.Get("Service", "ExecStart")
			line := commandLine(start, "ward-agent")
			checkCommand(t, line, "/usr/bin/ward-agent", "run")
			for _, want := range append(tt.wantStart, "--state-dir /var/lib/ward-agent",
				"--controller ward.example.test:7443") {
				if !strings.Contains(line, want) {
					t.Errorf("ExecStart = %q, want %q", line, want)
				}
			}

			// The token: a path handed to the enroll-once script, never its content.
			if got := e.Service.Environment["WARD_TOKEN_FILE"]; got != "/run/keys/ward-token" {
				t.Errorf("WARD_TOKEN_FILE = %q", got)
			}
			conds := fmt.Sprint(e.Service.UnitConfig["ConditionPathExists"])
			if !strings.Contains(conds, "|/var/lib/ward-agent/cert.pem") ||
				!strings.Contains(conds, "|/run/keys/ward-token") {
				t.Errorf("ConditionPathExists = %s", conds)
			}
			if pre, _ := u.Get("Service", "ExecStartPre"); !strings.HasSuffix(pre,
				"-ward-agent-enroll-once /var/lib/ward-agent") {
				t.Errorf("ExecStartPre = %q, want the enroll-once script", pre)
			}
		})
	}
}

// TestNixAgentTokenOutsideStore checks that a token in the Nix store, or given as a Nix
// path (which would be copied into the store), is refused.
func TestNixAgentTokenOutsideStore(t *testing.T) {
	for name, token := range map[string]string{
		"store path":   `"/nix/store/2b2mhwdn5bsl5v0zpdq6dxmph7x0lmhd-token"`,
		"nix path":     `/etc/ward/token`,
		"default path": `"/run/keys/ward-token"`,
	} {
		t.Run(name, func(t *testing.T) {
			settings := fmt.Sprintf(`{ enable = true; controller = "c:7443";
				caFile = "/etc/ward/ca.pem"; enrollmentTokenFile = %s; }`, token)
			failed := evalModule(t, "ward-agent", settings).failed()
			refused := len(failed) == 1 && strings.Contains(failed[0], "outside the Nix store")
			if want := name != "default path"; refused != want {
				t.Errorf("token %s: failed assertions %q, want refused = %v", token, failed, want)
			}
		})
	}
}

func TestNixAgentDisabled(t *testing.T) {
	e := evalModule(t, "ward-agent", `{ }`)
	if e.Service != nil || len(e.Assertions) != 0 {
		t.Errorf("a disabled module configures %+v", e)
	}
	for _, want := range []string{"enable", "controller", "caFile", "enrollmentTokenFile",
		"roles", "hostRoot", "stateDir", "extraArgs"} {
		if !contains(e.Options, want) {
			t.Errorf("services.ward-agent has no option %s (has %q)", want, e.Options)
		}
	}
}

func TestNixControllerModule(t *testing.T) {
	e := evalModule(t, "ward-controller", `{ enable = true; trustDomain = "ward.test";
		dnsNames = [ "ward.example.test" ]; openFirewall = true; }`)
	if failed := e.failed(); len(failed) > 0 {
		t.Fatalf("assertions failed: %q", failed)
	}
	u := unitFromNix(e.Service.ServiceConfig)
	checkHardening(t, "nixos ward-controller", u)

	if got, _ := u.Get("Service", "User"); got != "ward-controller" {
		t.Errorf("User = %q", got)
	}
	if !contains(e.Users, "ward-controller") {
		t.Errorf("users = %q, want ward-controller", e.Users)
	}
	if got := unitfile.List("Service", "CapabilityBoundingSet", u); len(got) != 0 {
		t.Errorf("CapabilityBoundingSet = %q, want none", got)
	}
	if len(e.FirewallPorts) != 1 || e.FirewallPorts[0] != 7443 {
		t.Errorf("firewall ports = %v, want [7443]", e.FirewallPorts)
	}
	start, _ := u.Get("Service", "ExecStart")
	line := commandLine(start, "ward-controller")
	checkCommand(t, line, "/usr/bin/ward-controller", "serve")
	if env := e.Service.Environment; env["WARD_TRUST_DOMAIN"] != "ward.test" ||
		env["WARD_DNS_NAMES"] != "ward.example.test" {
		t.Errorf("init settings = %v", env)
	}
}
