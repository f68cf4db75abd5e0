package hostfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func tree(t *testing.T) *FS {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "etc/static/ssh"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "etc/ssh/sshd_config.d"), 0o755))
	must(os.WriteFile(filepath.Join(root, "etc/static/ssh/sshd_config"), []byte("static\n"), 0o644))
	must(os.Symlink("/etc/static/ssh/sshd_config", filepath.Join(root, "etc/ssh/sshd_config")))
	must(os.WriteFile(filepath.Join(root, "etc/ssh/sshd_config.d/a.conf"), []byte("a"), 0o600))
	must(os.WriteFile(filepath.Join(root, "etc/ssh/sshd_config.d/b.conf"), []byte("b"), 0o600))
	must(os.Symlink("../../../../../../outside", filepath.Join(root, "etc/escape")))
	f, err := New(root)
	must(err)
	return f
}

func TestAbsoluteSymlinkStaysInRoot(t *testing.T) {
	f := tree(t)
	data, err := f.ReadFile("/etc/ssh/sshd_config")
	if err != nil || string(data) != "static\n" {
		t.Fatalf("ReadFile = %q, %v", data, err)
	}
	if r, _ := f.Resolve("/etc/escape"); r != "/outside" {
		t.Errorf("Resolve(escape) = %q, want /outside under the root", r)
	}
}

func TestGlob(t *testing.T) {
	f := tree(t)
	got, err := f.Glob("/etc/ssh/sshd_config.d/*.conf")
	if err != nil || len(got) != 2 || got[0] != "/etc/ssh/sshd_config.d/a.conf" {
		t.Fatalf("Glob = %v, %v", got, err)
	}
}

func TestWriteFileRefusesSymlinkAndKeepsMode(t *testing.T) {
	f := tree(t)
	err := f.WriteFile("/etc/ssh/sshd_config", []byte("x"), WriteOptions{UID: -1, GID: -1})
	if !errors.Is(err, ErrSymlink) {
		t.Fatalf("WriteFile(symlink) = %v, want ErrSymlink", err)
	}

	p := "/etc/ssh/sshd_config.d/a.conf"
	if err := f.WriteFile(p, []byte("new"), WriteOptions{Mode: 0o644, UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat(p)
	data, _ := f.ReadFile(p)
	if fi.Mode().Perm() != 0o600 || string(data) != "new" {
		t.Errorf("mode %v data %q", fi.Mode(), data)
	}
}
