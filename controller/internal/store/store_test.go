package store

import (
	"slices"
	"strings"
	"testing"
)

func TestNormalizeAgentRoles(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr string // substring; "" means no error
	}{
		{"none is host", nil, []string{"host"}, ""},
		{"host", []string{"host"}, []string{"host"}, ""},
		{"collector implies host", []string{"collector"}, []string{"host", "collector"}, ""},
		{"duplicates and order", []string{"collector", "host", "collector"},
			[]string{"host", "collector"}, ""},
		{"unknown", []string{"host", "admin"}, nil, `"admin"`},
		{"case matters", []string{"Collector"}, nil, `"Collector"`},
		{"empty string", []string{""}, nil, `""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeAgentRoles(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("NormalizeAgentRoles(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestAgentAllowedRoles checks that the allowed roles come from Roles alone (what the
// agent claimed in Host.Roles never counts) and that an agent without stored roles is
// host-only.
func TestAgentAllowedRoles(t *testing.T) {
	tests := []struct {
		name       string
		roles      []string // stored, fixed by an operator
		claimed    []string // Host.Roles, from the agent
		want       []string
		mayCollect bool
	}{
		{"enrolled before roles were stored", nil, []string{"host", "collector"},
			[]string{"host"}, false},
		{"host", []string{"host"}, []string{"collector"}, []string{"host"}, false},
		{"collector", []string{"host", "collector"}, nil, []string{"host", "collector"},
			true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Agent{Roles: tt.roles, Host: HostFacts{Roles: tt.claimed}}
			if got := a.AllowedRoles(); !slices.Equal(got, tt.want) {
				t.Errorf("AllowedRoles = %q, want %q", got, tt.want)
			}
			if got := a.MayTake(AgentRoleCollector); got != tt.mayCollect {
				t.Errorf("MayTake(collector) = %v, want %v", got, tt.mayCollect)
			}
			if !a.MayTake(AgentRoleHost) {
				t.Error("MayTake(host) = false, want true")
			}
		})
	}
}
