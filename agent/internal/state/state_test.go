package state

import (
	"crypto"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardsec/ward/agent/internal/testca"
	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/pki"
)

type fixture struct {
	ca   *testca.CA
	dir  Dir
	info Info
}

func enrolled(t *testing.T) (fixture, crypto.Signer) {
	t.Helper()
	ca := testca.New(t, "msp.example")
	info := Info{AgentID: "a1", Tenant: "clinic-a", TrustDomain: "msp.example",
		Controller: "localhost:7443", Roles: []string{"host"}, EnrolledAt: time.Now()}
	key, der := issue(t, ca, info)
	policy, _ := pki.NewKey()
	policyDER, _ := x509.MarshalPKIXPublicKey(&policy.PublicKey)

	dir := Dir(filepath.Join(t.TempDir(), "state"))
	err := dir.Save(Enrollment{Info: info, Key: key, Chain: [][]byte{der},
		CAs: [][]byte{ca.Cert.Raw}, PolicyKey: policyDER})
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	return fixture{ca: ca, dir: dir, info: info}, key
}

func issue(t *testing.T, ca *testca.CA, info Info) (crypto.Signer, []byte) {
	t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.Issue(key.Public(), info.ID(), time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func TestSaveWritesPrivateMaterialWith0600AndLoadReadsItBack(t *testing.T) {
	f, _ := enrolled(t)

	modes := map[string]os.FileMode{KeyFile: 0o600, CertFile: 0o644, CAFile: 0o644,
		PolicyFile: 0o644, InfoFile: 0o644}
	for name, want := range modes {
		fi, err := os.Stat(filepath.Join(string(f.dir), name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode %o, want %o", name, got, want)
		}
	}
	if fi, _ := os.Stat(string(f.dir)); fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %o, want 700", fi.Mode().Perm())
	}

	st, err := f.dir.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if st.Info.AgentID != "a1" || st.Info.Tenant != "clinic-a" || st.PolicyKey == nil {
		t.Errorf("Load = %+v", st.Info)
	}
	if id, _ := identity.FromCertificate(st.Cert.Leaf); id != f.info.ID() {
		t.Errorf("certificate names %v", id)
	}
}

func TestLoadRefusesMissingOrMismatchedState(t *testing.T) {
	if _, err := Dir(t.TempDir()).Load(); !errors.Is(err, ErrNotEnrolled) {
		t.Errorf("Load of an empty dir = %v, want ErrNotEnrolled", err)
	}

	f, _ := enrolled(t)
	other := f.info
	other.AgentID = "someone-else"
	_, der := issue(t, f.ca, other)
	if err := os.WriteFile(filepath.Join(string(f.dir), CertFile), pki.EncodeCerts(der),
		0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.dir.Load(); err == nil {
		t.Error("Load accepted a certificate that does not match its key and agent.json")
	}
}

func TestSaveKeyPairReplacesAndRecoversInterruptedReplacement(t *testing.T) {
	tests := []struct {
		name     string
		leave    []string // side files left behind by a crash
		wantNext bool     // Load must end up with the new pair
	}{
		{"complete", nil, true},
		{"crash before renames", []string{nextKeyFile, nextCertFile}, true},
		{"crash between renames", []string{nextCertFile}, true},
		{"crash while writing the certificate", []string{nextKeyFile}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, oldKey := enrolled(t)
			newKey, newDER := issue(t, f.ca, f.info)

			if tt.leave == nil {
				if err := f.dir.SaveKeyPair(newKey, [][]byte{newDER}); err != nil {
					t.Fatal(err)
				}
			} else {
				simulateCrash(t, f.dir, tt.leave, newKey, newDER)
			}

			st, err := f.dir.Load()
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := oldKey
			if tt.wantNext {
				want = newKey
			}
			if !want.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(
				st.Cert.Leaf.PublicKey) {
				t.Errorf("loaded pair is not the expected one")
			}
			fi, err := os.Stat(filepath.Join(string(f.dir), KeyFile))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("key.pem after replacement: %v mode %o", err, fi.Mode().Perm())
			}
		})
	}
}

// simulateCrash leaves the directory as a crash in SaveKeyPair would: the listed side
// files exist, and if only the certificate is left, the key was already renamed.
func simulateCrash(t *testing.T, d Dir, leave []string, key crypto.Signer, der []byte) {
	t.Helper()
	keyPEM, _ := pki.EncodeKey(key)
	for _, name := range leave {
		data, mode := pki.EncodeCerts(der), os.FileMode(0o644)
		if name == nextKeyFile {
			data, mode = keyPEM, 0o600
		}
		if err := pki.WriteFile(d.path(name), data, mode); err != nil {
			t.Fatal(err)
		}
	}
	if len(leave) == 1 && leave[0] == nextCertFile {
		if err := pki.WriteFile(d.path(KeyFile), keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestClearRemovesEnrollmentAndSpool(t *testing.T) {
	f, _ := enrolled(t)
	if err := os.MkdirAll(f.dir.SpoolPath(), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{DriftFile, BaselineFile, CommandLedgerFile} {
		if err := os.WriteFile(f.dir.path(n), []byte("old enrollment"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.dir.Clear(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.dir.Enrolled(); ok {
		t.Error("still enrolled after Clear")
	}
	if _, err := os.Stat(f.dir.SpoolPath()); !os.IsNotExist(err) {
		t.Errorf("spool survived Clear: %v", err)
	}
	for _, n := range []string{DriftFile, BaselineFile, CommandLedgerFile} {
		if _, err := os.Stat(f.dir.path(n)); !os.IsNotExist(err) {
			t.Errorf("%s survived Clear: %v", n, err)
		}
	}
}
