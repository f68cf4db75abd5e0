package hostinfo

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestCollectReadsThePreparedTree(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  Facts
	}{
		{
			name: "debian",
			files: map[string]string{
				"etc/os-release": "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n" +
					"NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
				"etc/machine-id":            "0123456789abcdef0123456789abcdef\n",
				"etc/hostname":              "clinic-fs01\n",
				"proc/sys/kernel/osrelease": "6.1.0-18-amd64\n",
			},
			want: Facts{Hostname: "clinic-fs01", OS: "debian", OSVersion: "12",
				Kernel: "6.1.0-18-amd64", MachineID: "0123456789abcdef0123456789abcdef"},
		},
		{
			name: "rhel in usr/lib with single quotes and comments",
			files: map[string]string{
				"usr/lib/os-release": "# comment\nID='rhel'\nVERSION_ID='9.4'\n\nbogus line\n",
				"etc/hostname":       "ehr-db\n",
			},
			want: Facts{Hostname: "ehr-db", OS: "rhel", OSVersion: "9.4"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Collect(writeTree(t, tt.files))
			if got.Hostname != tt.want.Hostname || got.OS != tt.want.OS ||
				got.OSVersion != tt.want.OSVersion || got.MachineID != tt.want.MachineID {
				t.Errorf("Collect = %+v, want %+v", got, tt.want)
			}
			if tt.want.Kernel != "" && got.Kernel != tt.want.Kernel {
				t.Errorf("Kernel = %q, want %q", got.Kernel, tt.want.Kernel)
			}
			if got.Arch != runtime.GOARCH {
				t.Errorf("Arch = %q", got.Arch)
			}
		})
	}
}

func TestCollectFallsBackToTheRunningSystem(t *testing.T) {
	got := Collect(t.TempDir())
	host, _ := os.Hostname()
	if got.Hostname != host {
		t.Errorf("Hostname = %q, want the running system's %q", got.Hostname, host)
	}
	if got.OS != runtime.GOOS || got.MachineID != "" {
		t.Errorf("empty tree gave OS %q machine id %q", got.OS, got.MachineID)
	}
	if runtime.GOOS == "linux" && got.Kernel == "" {
		t.Error("no kernel release from uname")
	}
	for _, a := range got.Addresses {
		if a == "127.0.0.1" || a == "::1" {
			t.Errorf("loopback address %s reported", a)
		}
	}
}
