package install

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/store/badger"
	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/pki"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func initDir(t *testing.T, dns ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ward")
	err := Init(context.Background(), Options{DataDir: dir, TrustDomain: "msp.example",
		Name: "ctl-1", DNSNames: dns, Log: slog.New(slog.NewTextHandler(tWriter{t}, nil))})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return dir
}

func TestInitPrivateFilesAreOwnerOnly(t *testing.T) {
	dir := initDir(t)

	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v %v, want mode 0700", st.Mode(), err)
	}
	var keys []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(data), "PRIVATE KEY") {
			keys = append(keys, path)
			st, _ := d.Info()
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %v, want 0600", path, st.Mode().Perm())
			}
		}
		if strings.HasPrefix(d.Name(), ".") {
			t.Errorf("leftover %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ca/root-key.pem", "ca/intermediate-key.pem", "controller/key.pem",
		"policy/key.pem", "operators/admin/key.pem"}
	for _, w := range want {
		found := false
		for _, k := range keys {
			found = found || k == filepath.Join(dir, w)
		}
		if !found {
			t.Errorf("no private key at %s", w)
		}
	}
	if len(keys) != len(want) {
		t.Errorf("private keys: %v, want %v", keys, want)
	}
}

func TestInitAdminCertificate(t *testing.T) {
	dir := initDir(t)
	p := PathsOf(dir)
	roots, err := pki.LoadPool(p.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := pki.LoadKeyPair(filepath.Join(p.AdminDir, "cert.pem"),
		filepath.Join(p.AdminDir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, inter := parseChain(t, pair)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Fatalf("admin cert does not verify against ca.pem: %v", err)
	}
	id, err := identity.FromCertificate(leaf)
	if err != nil || id != identity.Operator("msp.example", "admin") {
		t.Errorf("admin identity = %v, %v", id, err)
	}
	if life := time.Until(leaf.NotAfter); life < 89*24*time.Hour || life > 91*24*time.Hour {
		t.Errorf("admin cert lifetime %v, want 90 days", life)
	}

	st, err := badger.Open(p.DB, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	op, err := st.GetOperator(context.Background(), "admin")
	if err != nil || op.Role != "admin" || op.Revoked {
		t.Errorf("stored admin = %+v, %v", op, err)
	}
}

func parseChain(t *testing.T, pair tls.Certificate) (*x509.Certificate, *x509.CertPool) {
	t.Helper()
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(c)
	}
	return leaf, inter
}

func TestInitControllerCertificate(t *testing.T) {
	dir := initDir(t, "ward.msp.example")
	p := PathsOf(dir)
	roots, err := pki.LoadPool(p.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := pki.LoadKeyPair(p.ControllerCert, p.ControllerKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, inter := parseChain(t, pair)
	for _, host := range []string{"localhost", "127.0.0.1", "::1", "ward.msp.example"} {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots,
			Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			t.Errorf("controller cert for %s: %v", host, err)
		}
	}
	if id, _ := identity.FromCertificate(leaf); id != identity.Controller("msp.example", "ctl-1") {
		t.Errorf("controller identity = %v", id)
	}
	if _, err := ca.LoadPolicyKey(dir); err != nil {
		t.Errorf("policy key: %v", err)
	}
	c, err := ca.Load(dir)
	if err != nil || c.TrustDomain() != "msp.example" {
		t.Errorf("ca.Load: %v", err)
	}

	inst, err := LoadInstall(dir)
	if err != nil {
		t.Fatal(err)
	}
	if inst.TrustDomain != "msp.example" || inst.Name != "ctl-1" || inst.CreatedAt.IsZero() {
		t.Errorf("install.json = %+v", inst)
	}
}

func TestInitRefusesExistingInstallation(t *testing.T) {
	dir := initDir(t)
	before := snapshot(t, dir)

	err := Init(context.Background(), Options{DataDir: dir, TrustDomain: "other.example"})
	if !errors.Is(err, ErrInstalled) {
		t.Fatalf("second Init = %v, want ErrInstalled", err)
	}
	if after := snapshot(t, dir); after != before {
		t.Error("refused Init changed the directory")
	}

	// A part of an installation is enough to refuse.
	partial := t.TempDir()
	if err := os.WriteFile(filepath.Join(partial, "ca.pem"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = Init(context.Background(), Options{DataDir: partial, TrustDomain: "msp.example"})
	if !errors.Is(err, ErrInstalled) {
		t.Fatalf("Init over a ca.pem = %v, want ErrInstalled", err)
	}
}

// snapshot lists every path with its size and modification time.
func snapshot(t *testing.T, dir string) string {
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, _ := d.Info()
		b.WriteString(path + " " + st.ModTime().String() + " " + st.Mode().String() + "\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestInitRejectsBadOptions(t *testing.T) {
	tests := []Options{
		{TrustDomain: "msp.example"},
		{DataDir: "x", TrustDomain: ""},
		{DataDir: "x", TrustDomain: "Bad Domain"},
		{DataDir: "x", TrustDomain: "msp.example", Name: "Bad/Name"},
		{DataDir: "x", TrustDomain: "msp.example", DNSNames: []string{"10.0.0.1"}},
	}
	for _, o := range tests {
		dir := t.TempDir()
		if o.DataDir != "" {
			o.DataDir = filepath.Join(dir, o.DataDir)
		}
		if err := Init(context.Background(), o); err == nil {
			t.Errorf("Init(%+v) = nil", o)
		}
		if o.DataDir != "" {
			if _, err := os.Stat(o.DataDir); err == nil {
				t.Errorf("Init(%+v) created the directory", o)
			}
		}
	}
}

func TestInitIntoExistingEmptyDir(t *testing.T) {
	dir := t.TempDir()
	if err := Init(context.Background(), Options{DataDir: dir, TrustDomain: "msp.example"}); err != nil {
		t.Fatal(err)
	}
	inst, err := LoadInstall(dir)
	if err != nil || inst.Name != DefaultName {
		t.Fatalf("LoadInstall = %+v, %v", inst, err)
	}
}
