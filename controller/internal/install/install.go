// Package install creates a controller installation (`ward-controller init`): the CA, the
// controller's serving certificate, the policy key, the store with its first operator
// "admin", that operator's key and certificate, and DIR/install.json. See Paths for the
// layout of the data directory.
package install

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/pki"
)

// Defaults and lifetimes of what Init issues.
const (
	DefaultName       = "controller"
	AdminName         = "admin"
	ControllerCertTTL = 365 * 24 * time.Hour
	AdminCertTTL      = 90 * 24 * time.Hour
)

// ErrInstalled is returned by Init when the data directory already holds an installation.
var ErrInstalled = errors.New("install: the data directory already holds an installation")

// Options describe a new installation.
type Options struct {
	// DataDir is created (mode 0700) if missing. Required.
	DataDir string
	// TrustDomain names the installation in every certificate, e.g. "msp.example".
	// Required.
	TrustDomain string
	// Name is the controller's name in its identity; default DefaultName.
	Name string
	// DNSNames are added to the serving certificate, after "localhost".
	DNSNames []string
	// Log receives a summary of what was created; nil discards it.
	Log *slog.Logger
}

// Install is what install.json records.
type Install struct {
	TrustDomain string    `json:"trust_domain"`
	Name        string    `json:"controller_name"`
	CreatedAt   time.Time `json:"created_at"`
}

// Paths are the files of an installation under its data directory.
type Paths struct {
	Dir            string
	Bundle         string // ca.pem: the trust bundle
	ControllerCert string // controller/cert.pem: chain, leaf first
	ControllerKey  string // controller/key.pem (0600)
	DB             string // db/: the Badger store
	AdminDir       string // operators/admin/: cert.pem, key.pem (0600), ca.pem
	InstallFile    string // install.json
	// EvidenceArchives holds the evidence archive bundles (0700, files 0600); serve
	// creates it.
	EvidenceArchives string
}

// PathsOf returns the layout of the installation in dir.
func PathsOf(dir string) Paths {
	return Paths{
		Dir:              dir,
		Bundle:           filepath.Join(dir, ca.BundleFile),
		ControllerCert:   filepath.Join(dir, "controller", "cert.pem"),
		ControllerKey:    filepath.Join(dir, "controller", "key.pem"),
		DB:               filepath.Join(dir, "db"),
		AdminDir:         filepath.Join(dir, "operators", AdminName),
		InstallFile:      filepath.Join(dir, "install.json"),
		EvidenceArchives: filepath.Join(dir, "evidence-archives"),
	}
}

// entries are the top-level names Init creates; any of them present means "installed".
var entries = []string{"ca", ca.BundleFile, "controller", "policy", "db", "operators",
	"install.json"}

// Init creates a new installation in o.DataDir. It builds everything in a staging
// directory inside DataDir and moves it into place at the end, install.json last, so a
// failure leaves no partial installation behind. It refuses with ErrInstalled, changing
// nothing, when DataDir already holds any part of an installation.
func Init(ctx context.Context, o Options) error {
	if err := o.check(); err != nil {
		return err
	}
	if err := refuseExisting(o.DataDir); err != nil {
		return err
	}

	created, err := makeDir(o.DataDir)
	if err != nil {
		return err
	}
	staging, err := os.MkdirTemp(o.DataDir, ".init-")
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	defer os.RemoveAll(staging)

	inst, admin, err := build(ctx, staging, o)
	if err == nil {
		err = commit(staging, o.DataDir)
	}
	if err != nil {
		if created {
			os.RemoveAll(o.DataDir)
		}
		return err
	}

	o.Log.Info("installation created", logkey.Path, o.DataDir,
		"trust_domain", inst.TrustDomain, "controller", inst.Name,
		logkey.Operator, AdminName, logkey.Serial, admin.serial, logkey.NotAfter, admin.notAfter)
	return nil
}

func (o *Options) check() error {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.DataDir == "":
		return errors.New("install: no data directory")
	case identity.Controller(o.TrustDomain, "x").Validate() != nil:
		return fmt.Errorf("install: invalid trust domain %q", o.TrustDomain)
	case !identity.ValidName(o.Name):
		return fmt.Errorf("install: invalid controller name %q", o.Name)
	}
	for _, d := range o.DNSNames {
		if d == "" || net.ParseIP(d) != nil {
			return fmt.Errorf("install: invalid dns name %q", d)
		}
	}
	return nil
}

func refuseExisting(dir string) error {
	for _, e := range entries {
		if _, err := os.Lstat(filepath.Join(dir, e)); err == nil {
			return fmt.Errorf("%w (%s exists)", ErrInstalled, filepath.Join(dir, e))
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("install: %w", err)
		}
	}
	return nil
}

// makeDir creates dir with mode 0700 and reports whether it had to.
func makeDir(dir string) (bool, error) {
	if _, err := os.Stat(dir); err == nil {
		return false, nil
	}
	if err := os.MkdirAll(dir, pki.DirMode); err != nil {
		return false, fmt.Errorf("install: %w", err)
	}
	return true, nil
}

// issued summarises a certificate for the log.
type issued struct {
	serial   string
	notAfter time.Time
}

// build creates every part of the installation in dir.
func build(ctx context.Context, dir string, o Options) (Install, issued, error) {
	p := PathsOf(dir)
	authority, err := ca.Create(dir, o.TrustDomain)
	if err != nil {
		return Install{}, issued{}, fmt.Errorf("install: %w", err)
	}
	if err := writeControllerCert(authority, p, o); err != nil {
		return Install{}, issued{}, err
	}
	if err := ca.CreatePolicyKey(dir); err != nil {
		return Install{}, issued{}, fmt.Errorf("install: %w", err)
	}
	now := time.Now().UTC()
	if err := createAdmin(ctx, p, o.Log, now); err != nil {
		return Install{}, issued{}, err
	}
	admin, err := writeOperatorCert(authority, p.AdminDir, AdminName, AdminCertTTL)
	if err != nil {
		return Install{}, issued{}, err
	}

	inst := Install{TrustDomain: o.TrustDomain, Name: o.Name, CreatedAt: now}
	data, err := json.MarshalIndent(inst, "", "  ")
	if err != nil {
		return Install{}, issued{}, fmt.Errorf("install: %w", err)
	}
	if err := pki.WriteFile(p.InstallFile, append(data, '\n'), pki.PublicMode); err != nil {
		return Install{}, issued{}, fmt.Errorf("install: %w", err)
	}
	return inst, admin, nil
}

func writeControllerCert(authority *ca.CA, p Paths, o Options) error {
	key, err := pki.NewKey()
	if err != nil {
		return fmt.Errorf("install: controller key: %w", err)
	}
	dns := []string{"localhost"}
	for _, d := range o.DNSNames {
		if !slices.Contains(dns, d) {
			dns = append(dns, d)
		}
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	chain, err := authority.SignController(key.Public(), o.Name, dns, ips, ControllerCertTTL)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return writePair(p.ControllerCert, p.ControllerKey, chain, key)
}

func createAdmin(ctx context.Context, p Paths, log *slog.Logger, now time.Time) error {
	st, err := badger.Open(p.DB, log)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	op := store.Operator{Name: AdminName, Role: store.RoleAdmin, CreatedAt: now,
		CreatedBy: "install"}
	err = st.CreateOperator(ctx, op)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return nil
}

// writeOperatorCert makes a key, has the CA sign it for the named operator, and writes
// dir/key.pem (0600), dir/cert.pem and dir/ca.pem.
func writeOperatorCert(authority *ca.CA, dir, name string, ttl time.Duration) (issued, error) {
	key, err := pki.NewKey()
	if err != nil {
		return issued{}, fmt.Errorf("install: operator key: %w", err)
	}
	csr, err := pki.NewCSR(key, name)
	if err != nil {
		return issued{}, fmt.Errorf("install: %w", err)
	}
	chain, leaf, err := authority.SignOperator(csr, name, ttl)
	if err != nil {
		return issued{}, fmt.Errorf("install: %w", err)
	}
	err = writePair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), chain, key)
	if err != nil {
		return issued{}, err
	}
	if err := pki.WriteFile(filepath.Join(dir, "ca.pem"), authority.BundlePEM(),
		pki.PublicMode); err != nil {
		return issued{}, fmt.Errorf("install: %w", err)
	}
	return issued{serial: leaf.SerialNumber.Text(16), notAfter: leaf.NotAfter}, nil
}

// writePair writes a certificate chain and its private key (0600).
func writePair(certPath, keyPath string, chain [][]byte, key crypto.Signer) error {
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err := pki.WriteFile(keyPath, keyPEM, pki.PrivateMode); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err := pki.WriteFile(certPath, pki.EncodeCerts(chain...), pki.PublicMode); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return nil
}

// commit moves the staged entries into dir, install.json last. On failure it takes back
// what it had moved.
func commit(staging, dir string) error {
	for i, e := range entries {
		if err := os.Rename(filepath.Join(staging, e), filepath.Join(dir, e)); err != nil {
			for _, moved := range entries[:i] {
				os.RemoveAll(filepath.Join(dir, moved))
			}
			return fmt.Errorf("install: %w", err)
		}
	}
	return nil
}

// LoadInstall reads DIR/install.json.
func LoadInstall(dir string) (Install, error) {
	data, err := os.ReadFile(PathsOf(dir).InstallFile)
	if err != nil {
		return Install{}, fmt.Errorf("install: load: %w", err)
	}
	var inst Install
	if err := json.Unmarshal(data, &inst); err != nil {
		return Install{}, fmt.Errorf("install: load %s: %w", PathsOf(dir).InstallFile, err)
	}
	if inst.TrustDomain == "" || inst.Name == "" {
		return Install{}, fmt.Errorf("install: load %s: incomplete", PathsOf(dir).InstallFile)
	}
	return inst, nil
}
