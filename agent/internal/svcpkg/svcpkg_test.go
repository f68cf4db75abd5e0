package svcpkg

import (
	"context"
	"log/slog"
	"testing"

	"github.com/wardsec/ward/agent/internal/hostfs"
)

func TestCompareDebian(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.9.5p2-3", "1.9.5p2", 1},
		{"1.9.5p1-3+deb11u1", "1.9.5p2", -1},
		{"1:9.2p1-2", "9.9", 1},
		{"1.0~rc1", "1.0", -1},
		{"1.10", "1.9", 1},
		{"1.9.13p3-1+deb12u1", "1.9.5p2", 1},
		{"2.0", "2.0", 0},
	}
	for _, tt := range tests {
		if got := CompareDebian(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareDebian(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestSimulated(t *testing.T) {
	fsys, _ := hostfs.New(t.TempDir())
	err := SaveSim(fsys, SimState{
		Services:        map[string]SimService{"sshd": {Active: true, Enabled: true}, "auditd": {}},
		Packages:        map[string]string{"sudo": "1.9.5p1-1"},
		SecurityUpdates: map[string]string{"sudo": "1.9.5p2-3"},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := New(fsys, FamilyDeb, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	if !p.Simulated() {
		t.Fatal("provider on a tree is not simulated")
	}

	if err := p.Control(ctx, OpEnable, "auditd.service"); err != nil {
		t.Fatal(err)
	}
	if s, _ := p.Service(ctx, "auditd"); !s.Active || !s.Enabled || !s.Exists {
		t.Errorf("auditd after enable = %+v", s)
	}
	if err := p.Control(ctx, OpRestart, "nope"); err == nil {
		t.Error("restarting an unknown unit succeeded")
	}
	out, err := p.ApplySecurityUpdates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pkg, _ := p.Package(ctx, "sudo"); pkg.Version != "1.9.5p2-3" {
		t.Errorf("sudo after updates = %+v (%s)", pkg, out)
	}
}
