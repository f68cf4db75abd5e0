package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
)

// TestTokenRolesFlag creates tokens with --role repeated, comma-separated, defaulted and
// unknown, and finds the roles in token list (table and JSON).
func TestTokenRolesFlag(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "create", "clinic-a")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"default", nil, "host"},
		{"collector", []string{"--role", "collector"}, "host,collector"},
		{"repeated", []string{"--role", "host", "--role", "collector"}, "host,collector"},
		{"comma list", []string{"--role", "collector,host"}, "host,collector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-o", "json", "token", "create", "--tenant", "clinic-a"},
				tt.args...)
			var created struct {
				Token struct {
					ID    string   `json:"id"`
					Roles []string `json:"roles"`
				} `json:"token"`
			}
			if err := json.Unmarshal([]byte(c.ok(args...)), &created); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(created.Token.Roles, ","); got != tt.want {
				t.Errorf("created roles %q, want %q", got, tt.want)
			}
			var listed []struct {
				ID    string   `json:"id"`
				Roles []string `json:"roles"`
			}
			raw := c.ok("-o", "json", "token", "list", "--tenant", "clinic-a")
			if err := json.Unmarshal([]byte(raw), &listed); err != nil {
				t.Fatal(err)
			}
			for _, l := range listed {
				if l.ID == created.Token.ID && strings.Join(l.Roles, ",") != tt.want {
					t.Errorf("listed roles %q, want %q", l.Roles, tt.want)
				}
			}
			if table := c.ok("token", "list"); !strings.Contains(table, "ROLES") ||
				!containsRow(table, created.Token.ID, tt.want) {
				t.Errorf("token list table lacks %s with %s:\n%s", created.Token.ID, tt.want,
					table)
			}
		})
	}

	_, errOut, code := c.run("token", "create", "--tenant", "clinic-a", "--role", "scanner")
	if code == 0 || !strings.Contains(errOut, `"scanner"`) ||
		!strings.Contains(errOut, "invalid") {
		t.Errorf("unknown role: exit %d, stderr %q", code, errOut)
	}
}

// TestAgentRolesCommand shows and sets an agent's roles: an admin may, and the change is
// recorded; a technician of another tenant and an auditor may not; show and list -o json
// show the roles.
func TestAgentRolesCommand(t *testing.T) {
	c := newCLI(t)
	c.e.Tenant("clinic-a")
	c.e.Tenant("clinic-b")
	c.e.Agent("clinic-a", "agent-1")

	if got := c.ok("agent", "roles", "agent-1"); got != "host\n" {
		t.Errorf("roles of an agent enrolled before roles = %q, want host", got)
	}
	refused := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"technician of another tenant", c.operatorEnv("tech-b", store.RoleTechnician,
			"clinic-b"), "not found"},
		{"auditor", c.operatorEnv("aud", store.RoleAuditor), "permission denied"},
	}
	for _, tt := range refused {
		var out, errOut bytes.Buffer
		code := run([]string{"agent", "roles", "agent-1", "--set", "host,collector"}, &out,
			&errOut, func(k string) string { return tt.env[k] })
		if code == 0 || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want refused (%s)", tt.name, code,
				errOut.String(), tt.want)
		}
	}

	if got := c.ok("agent", "roles", "agent-1", "--set", "host,collector"); got !=
		"host,collector\n" {
		t.Errorf("set roles = %q", got)
	}
	recs := c.e.Evidence.OfType(evidence.TypeAgentRolesSet)
	if len(recs) != 1 || recs[0].Actor.ID != "admin" || recs[0].Subject != "agent-1" {
		t.Errorf("evidence = %+v, want one change by admin", recs)
	}
	if show := c.ok("agent", "show", "agent-1"); !strings.Contains(show, "host,collector") {
		t.Errorf("show:\n%s", show)
	}
	var agents []struct {
		ID    string   `json:"id"`
		Roles []string `json:"roles"`
	}
	if err := json.Unmarshal([]byte(c.ok("agent", "list", "-o", "json")), &agents); err != nil {
		t.Fatal(err)
	}
	if len(agents) != 1 || strings.Join(agents[0].Roles, ",") != "host,collector" {
		t.Errorf("agent list json = %+v", agents)
	}
}

// containsRow reports whether a line of table holds all of cells.
func containsRow(table string, cells ...string) bool {
	for _, line := range strings.Split(table, "\n") {
		all := true
		for _, c := range cells {
			all = all && strings.Contains(line, c)
		}
		if all {
			return true
		}
	}
	return false
}
