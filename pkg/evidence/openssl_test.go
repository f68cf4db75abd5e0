package evidence

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestManifestSignatureWithOpenSSL checks the outer signature with the stock openssl
// command the README gives the auditor, on a real bundle's files.
func TestManifestSignatureWithOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed (Debian package openssl)")
	}
	p := newPKI(t, "clinic")
	b := writeRead(t, buildLog(t, p, "clinic", 5, 5, true), p)
	dir := t.TempDir()
	for name, data := range b.Files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	verify := func() (string, error) {
		cmd := exec.Command(openssl, "dgst", "-sha256", "-verify", FilePublicKey,
			"-signature", FileManifestSig, FileManifest)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := verify(); err != nil || out != "Verified OK" {
		t.Fatalf("openssl verify = %q, %v; want Verified OK", out, err)
	}
	if !bytes.Contains(b.Files[FileReadme], []byte("openssl dgst -sha256 -verify "+
		FilePublicKey+" -signature "+FileManifestSig+" "+FileManifest)) {
		t.Error("README does not give the openssl command")
	}

	m := bytes.Replace(b.Files[FileManifest], []byte(`"clinic"`), []byte(`"clinix"`), 1)
	if err := os.WriteFile(filepath.Join(dir, FileManifest), m, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := verify(); err == nil {
		t.Errorf("openssl verified a changed manifest: %q", out)
	}
}
