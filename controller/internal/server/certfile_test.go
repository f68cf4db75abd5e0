package server

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/pkg/pki"
)

func TestCertFileReload(t *testing.T) {
	dir := t.TempDir()
	authority, err := ca.Create(dir, trustDomain)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	mtime := time.Now().Add(-time.Hour)
	write := func(name string) {
		t.Helper()
		key, err := pki.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		chain, err := authority.SignController(key.Public(), name, []string{"localhost"}, nil,
			time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		keyPEM, err := pki.EncodeKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if err := pki.WriteFile(keyPath, keyPEM, pki.PrivateMode); err != nil {
			t.Fatal(err)
		}
		if err := pki.WriteFile(certPath, pki.EncodeCerts(chain...), 0o644); err != nil {
			t.Fatal(err)
		}
		mtime = mtime.Add(time.Minute) // distinct modification times, however fast the test
		if err := os.Chtimes(certPath, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	served := func(c *certFile) string {
		t.Helper()
		got, err := c.get(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(got.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.URIs[0].Path
	}

	logs := &testWriter{t: t}
	write("first")
	c, err := loadCertFile(certPath, keyPath, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got := served(c); got != "/controller/first" {
		t.Fatalf("serves %s", got)
	}

	write("second")
	if got := served(c); got != "/controller/second" {
		t.Fatalf("after a new certificate, serves %s", got)
	}

	// A broken file keeps the current certificate, and says so once.
	if err := os.WriteFile(certPath, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	mtime = mtime.Add(time.Minute)
	if err := os.Chtimes(certPath, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := served(c); got != "/controller/second" {
			t.Fatalf("after a broken file, serves %s", got)
		}
	}
	if n := strings.Count(logs.String(), "reload failed"); n != 1 {
		t.Fatalf("reload failure logged %d times, want once", n)
	}
}
