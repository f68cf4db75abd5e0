package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/wardsec/ward/controller/internal/adminapi/adminapitest"
	"github.com/wardsec/ward/controller/internal/install"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*defaultPolicy[...]).processItems"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*Cache[...]).processItems"),
	)
}

// cli runs wardctl against one test controller.
type cli struct {
	t   *testing.T
	e   *adminapitest.Env
	env map[string]string
}

func newCLI(t *testing.T) *cli {
	e := adminapitest.New(t)
	admin := install.PathsOf(e.Dir).AdminDir
	return &cli{t: t, e: e, env: map[string]string{
		"WARD_CONTROLLER": e.Addr,
		"WARD_CERT":       filepath.Join(admin, "cert.pem"),
		"WARD_KEY":        filepath.Join(admin, "key.pem"),
		"WARD_CA":         filepath.Join(admin, "ca.pem"),
	}}
}

// run returns stdout, stderr and the exit status.
func (c *cli) run(args ...string) (string, string, int) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut, func(k string) string { return c.env[k] })
	return out.String(), errOut.String(), code
}

// ok runs and fails the test unless the command succeeds.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("wardctl %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func TestTenantsTableAndJSON(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "create", "clinic-a", "--display-name", "Clinic A")
	c.ok("tenants", "create", "clinic-b")

	table := c.ok("tenant", "list")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") ||
		!strings.Contains(lines[1], "Clinic A") || !strings.HasPrefix(lines[2], "clinic-b") {
		t.Errorf("table:\n%s", table)
	}

	var tenants []map[string]any
	if err := json.Unmarshal([]byte(c.ok("-o", "json", "tenant", "list")), &tenants); err != nil {
		t.Fatal(err)
	}
	if len(tenants) != 2 || tenants[0]["id"] != "clinic-a" ||
		tenants[0]["display_name"] != "Clinic A" || tenants[0]["created_by"] != "admin" {
		t.Errorf("json: %v", tenants)
	}
}

func TestTokenCreatePrintsSecretAlone(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "create", "clinic-a")

	out := c.ok("token", "create", "--tenant", "clinic-a", "--uses", "2", "--cidr",
		"10.0.0.0/8", "--ttl", "2h")
	if !regexp.MustCompile(`^[a-z2-7]{32}\n$`).MatchString(out) {
		t.Errorf("stdout = %q, want the secret alone", out)
	}

	var created struct {
		Secret string         `json:"secret"`
		Token  map[string]any `json:"token"`
	}
	raw := c.ok("-o", "json", "token", "create", "--tenant", "clinic-a")
	if err := json.Unmarshal([]byte(raw), &created); err != nil {
		t.Fatalf("%v in %s", err, raw)
	}
	if created.Secret == "" || created.Token["tenant"] != "clinic-a" ||
		created.Token["uses_left"] != float64(1) {
		t.Errorf("json = %s", raw)
	}

	list := c.ok("token", "list", "--tenant", "clinic-a")
	if strings.Contains(list, strings.TrimSpace(out)) || strings.Contains(list, created.Secret) {
		t.Error("token list shows a secret")
	}
	if !strings.Contains(list, "10.0.0.0/8") {
		t.Errorf("token list:\n%s", list)
	}
	id := created.Token["id"].(string)
	if revoked := c.ok("token", "revoke", id); !strings.Contains(revoked, "yes") {
		t.Errorf("revoke output:\n%s", revoked)
	}

	_, errOut, code := c.run("token", "create")
	if code == 0 || !strings.Contains(errOut, "tenant") {
		t.Errorf("token create without --tenant: exit %d, %q", code, errOut)
	}
}

func TestAgentListShowRevoke(t *testing.T) {
	c := newCLI(t)
	c.e.Tenant("clinic-a")
	c.e.Agent("clinic-a", "agent-1")

	var agents []map[string]any
	if err := json.Unmarshal([]byte(c.ok("agent", "list", "-o", "json")), &agents); err != nil {
		t.Fatal(err)
	}
	if len(agents) != 1 {
		t.Fatalf("agents = %v", agents)
	}
	for _, k := range []string{"id", "tenant", "hostname", "online", "last_seen",
		"cert_expires"} {
		if _, ok := agents[0][k]; !ok {
			t.Errorf("agent json lacks %q: %v", k, agents[0])
		}
	}
	if agents[0]["hostname"] != "agent-1.local" || agents[0]["online"] != false {
		t.Errorf("agent = %v", agents[0])
	}

	table := c.ok("agents", "list", "--tenant", "clinic-a")
	if !strings.Contains(table, "LAST SEEN") || !strings.Contains(table, "agent-1.local") {
		t.Errorf("table:\n%s", table)
	}
	if show := c.ok("agent", "show", "agent-1"); !strings.Contains(show, "tenant:") {
		t.Errorf("show:\n%s", show)
	}
	c.ok("agent", "revoke", "agent-1", "--reason", "stolen")
	if got := c.e.Closed.List(); len(got) != 1 || got[0] != "agent-1" {
		t.Errorf("streams closed: %v", got)
	}

	_, errOut, code := c.run("agent", "show", "ghost")
	if code != 1 || errOut != "wardctl: not found: agent \"ghost\" not found\n" {
		t.Errorf("unknown agent: exit %d, stderr %q", code, errOut)
	}
}

func TestOperatorCreateWritesUsableCredentials(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "create", "clinic-a")
	c.ok("tenant", "create", "clinic-b")
	dir := filepath.Join(t.TempDir(), "tech")

	out := c.ok("operator", "create", "tech", "--role", "technician", "--tenant", "clinic-a",
		"--out", dir)
	if !strings.Contains(out, "technician") || !strings.Contains(out, dir) {
		t.Errorf("output:\n%s", out)
	}
	st, err := os.Stat(filepath.Join(dir, "key.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key.pem: %v %v", st, err)
	}

	tech := &cli{t: t, e: c.e, env: map[string]string{"WARD_CONTROLLER": c.e.Addr}}
	flags := []string{"--cert", filepath.Join(dir, "cert.pem"), "--key",
		filepath.Join(dir, "key.pem"), "--ca", filepath.Join(dir, "ca.pem")}
	tech.ok(append(flags, "token", "create", "--tenant", "clinic-a")...)
	_, errOut, code := tech.run(append(flags, "token", "create", "--tenant", "clinic-b")...)
	if code != 1 || !strings.HasPrefix(errOut, "wardctl: permission denied: ") ||
		strings.Count(errOut, "\n") != 1 {
		t.Errorf("outside its tenant: exit %d, stderr %q", code, errOut)
	}

	_, errOut, _ = c.run("operator", "create", "tech2", "--role", "auditor", "--out", dir)
	if !strings.Contains(errOut, "already exists") {
		t.Errorf("second create into the same dir: %q", errOut)
	}

	list := c.ok("operator", "list")
	if !strings.Contains(list, "tech") || !strings.Contains(list, "clinic-a") {
		t.Errorf("operator list:\n%s", list)
	}
	c.ok("operator", "revoke", "tech")
	if _, _, code := tech.run(append(flags, "tenant", "list")...); code == 0 {
		t.Error("revoked operator still works")
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	c := newCLI(t)
	good := c.env
	c.env = map[string]string{"WARD_CONTROLLER": "127.0.0.1:1", "WARD_CERT": "/nonexistent",
		"WARD_KEY": good["WARD_KEY"], "WARD_CA": good["WARD_CA"]}
	_, errOut, code := c.run("tenant", "list")
	if code != 1 || !strings.Contains(errOut, "/nonexistent") {
		t.Errorf("bad env: exit %d, %q", code, errOut)
	}
	c.ok("--controller", good["WARD_CONTROLLER"], "--cert", good["WARD_CERT"], "tenant", "list")

	c.env = map[string]string{}
	_, errOut, code = c.run("tenant", "list")
	if code != 1 || !strings.Contains(errOut, "WARD_CERT") {
		t.Errorf("no credentials: exit %d, %q", code, errOut)
	}
	_, errOut, code = c.run("-o", "yaml", "tenant", "list")
	if code != 1 || !strings.Contains(errOut, "table or json") {
		t.Errorf("-o yaml: exit %d, %q", code, errOut)
	}
}

func TestCompletion(t *testing.T) {
	c := newCLI(t)
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if out := c.ok("completion", sh); !strings.Contains(out, "wardctl") {
			t.Errorf("completion %s printed %d bytes", sh, len(out))
		}
	}
}
