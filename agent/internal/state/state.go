// Package state owns the agent's state directory: its private key, certificate chain, the
// controller's trust bundle, the pinned policy public key and agent.json. Private material is
// written with mode 0600 and every file is replaced atomically.
//
//	DIR/key.pem      private key (0600)
//	DIR/cert.pem     certificate chain, leaf first
//	DIR/ca.pem       trust bundle for the controller
//	DIR/policy.pem   the controller's policy public key, pinned at enrollment
//	DIR/agent.json   agent id, tenant, trust domain, controller address
//	DIR/spool/       the spool (package spool)
package state

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/pki"
)

// File names inside the state directory.
const (
	KeyFile    = "key.pem"
	CertFile   = "cert.pem"
	CAFile     = "ca.pem"
	PolicyFile = "policy.pem"
	InfoFile   = "agent.json"
	SpoolDir   = "spool"

	// A renewal writes these first and renames them over KeyFile and CertFile.
	nextKeyFile  = "next-key.pem"
	nextCertFile = "next-cert.pem"
)

// ErrNotEnrolled is returned by Load when the directory holds no enrollment.
var ErrNotEnrolled = errors.New("state: agent is not enrolled")

// Info is agent.json.
type Info struct {
	AgentID     string    `json:"agent_id"`
	Tenant      string    `json:"tenant"`
	TrustDomain string    `json:"trust_domain"`
	Controller  string    `json:"controller"` // host:port the agent connects to
	Roles       []string  `json:"roles"`      // "host", "collector"
	EnrolledAt  time.Time `json:"enrolled_at"`
}

// ID returns the agent's identity.
func (i Info) ID() identity.ID { return identity.Agent(i.TrustDomain, i.Tenant, i.AgentID) }

// Enrollment is everything an enrollment produces.
type Enrollment struct {
	Info      Info
	Key       crypto.Signer
	Chain     [][]byte // DER, leaf first
	CAs       [][]byte // DER trust bundle
	PolicyKey []byte   // PKIX DER of the policy public key
}

// State is a loaded state directory.
type State struct {
	Info      Info
	Cert      tls.Certificate // Leaf is set
	CertTime  time.Time       // modification time of cert.pem: when it was obtained
	Roots     *x509.CertPool
	PolicyKey *ecdsa.PublicKey
}

// Dir is the path of a state directory. Its methods are not safe for concurrent use on the
// same directory; the agent has one writer (enrollment, then the renewer).
type Dir string

func (d Dir) path(name string) string { return filepath.Join(string(d), name) }

// SpoolPath returns the spool's directory.
func (d Dir) SpoolPath() string { return d.path(SpoolDir) }

// Enrolled reports whether the directory holds an enrollment (agent.json exists).
func (d Dir) Enrolled() (bool, error) {
	_, err := os.Stat(d.path(InfoFile))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("state: %w", err)
}

// Save writes a new enrollment. agent.json is written last, so an interrupted Save leaves a
// directory that does not count as enrolled.
func (d Dir) Save(e Enrollment) error {
	keyPEM, err := pki.EncodeKey(e.Key)
	if err != nil {
		return fmt.Errorf("save enrollment: %w", err)
	}
	pub, err := x509.ParsePKIXPublicKey(e.PolicyKey)
	if err != nil {
		return fmt.Errorf("save enrollment: policy key: %w", err)
	}
	policyPEM, err := pki.EncodePublicKey(pub)
	if err != nil {
		return fmt.Errorf("save enrollment: %w", err)
	}
	info, err := json.MarshalIndent(e.Info, "", "  ")
	if err != nil {
		return fmt.Errorf("save enrollment: %w", err)
	}

	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{KeyFile, keyPEM, pki.PrivateMode},
		{CertFile, pki.EncodeCerts(e.Chain...), pki.PublicMode},
		{CAFile, pki.EncodeCerts(e.CAs...), pki.PublicMode},
		{PolicyFile, policyPEM, pki.PublicMode},
		{InfoFile, append(info, '\n'), pki.PublicMode},
	}
	for _, f := range files {
		if err := pki.WriteFile(d.path(f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("save enrollment: %w", err)
		}
	}
	return syncDir(string(d))
}

// Files that other agent packages keep in the state directory. They belong to one
// enrollment, so Clear removes them too: a re-enrolled agent starts without the previous
// enrollment's baseline, drift history or ledger of executed commands.
const (
	DriftFile         = "drift.json"      // check states and since times (package drift)
	BaselineFile      = "baseline.yaml"   // the baseline in force (package agent)
	CommandLedgerFile = "commands.ledger" // ids of executed commands (package agent)
)

// Clear removes an enrollment and the spool, for a forced re-enrollment: a new identity
// starts a new sequence, so messages of the old one must not be sent under it.
func (d Dir) Clear() error {
	names := []string{InfoFile, KeyFile, CertFile, CAFile, PolicyFile, nextKeyFile,
		nextCertFile, SpoolDir, DriftFile, BaselineFile, CommandLedgerFile}
	for _, n := range names {
		if err := os.RemoveAll(d.path(n)); err != nil {
			return fmt.Errorf("clear state: %w", err)
		}
	}
	return nil
}

// Load reads the state directory, first completing a key pair replacement that a crash
// interrupted. It checks that the key matches the certificate and that the certificate
// names the agent of agent.json.
func (d Dir) Load() (*State, error) {
	ok, err := d.Enrolled()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotEnrolled
	}
	if err := d.recoverKeyPair(); err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}

	var st State
	data, err := os.ReadFile(d.path(InfoFile))
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	if err := json.Unmarshal(data, &st.Info); err != nil {
		return nil, fmt.Errorf("load state: %s: %w", d.path(InfoFile), err)
	}

	if st.Cert, err = d.loadKeyPair(st.Info); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(d.path(CertFile)); err == nil {
		st.CertTime = fi.ModTime()
	}
	if st.Roots, err = pki.LoadPool(d.path(CAFile)); err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	if st.PolicyKey, err = d.loadPolicyKey(); err != nil {
		return nil, err
	}
	return &st, nil
}

func (d Dir) loadKeyPair(info Info) (tls.Certificate, error) {
	pair, err := pki.LoadKeyPair(d.path(CertFile), d.path(KeyFile))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load state: %w", err)
	}
	id, err := identity.FromCertificate(pair.Leaf)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load state: %s: %w", d.path(CertFile), err)
	}
	if id != info.ID() {
		return tls.Certificate{}, fmt.Errorf("load state: certificate names %s, agent.json %s",
			id, info.ID())
	}
	return pair, nil
}

func (d Dir) loadPolicyKey() (*ecdsa.PublicKey, error) {
	data, err := os.ReadFile(d.path(PolicyFile))
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	pub, err := pki.ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("load state: %s: %w", d.path(PolicyFile), err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("load state: %s: not an ECDSA key", d.path(PolicyFile))
	}
	return ec, nil
}

// SaveKeyPair replaces the key and certificate chain after a renewal. Both are written to
// side files first and then renamed into place; Load completes a replacement a crash cut
// short, so the directory never ends up with a key that does not match its certificate.
func (d Dir) SaveKeyPair(key crypto.Signer, chain [][]byte) error {
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return fmt.Errorf("save key pair: %w", err)
	}
	if err := pki.WriteFile(d.path(nextKeyFile), keyPEM, pki.PrivateMode); err != nil {
		return fmt.Errorf("save key pair: %w", err)
	}
	certPEM := pki.EncodeCerts(chain...)
	if err := pki.WriteFile(d.path(nextCertFile), certPEM, pki.PublicMode); err != nil {
		return fmt.Errorf("save key pair: %w", err)
	}
	if err := d.recoverKeyPair(); err != nil {
		return fmt.Errorf("save key pair: %w", err)
	}
	return nil
}

// recoverKeyPair finishes or abandons a replacement. Both side files present: the
// replacement had not started renaming; finish it. Only the certificate: the key was
// renamed already; rename the certificate. Only the key: the certificate was never written
// completely; abandon it.
func (d Dir) recoverKeyPair() error {
	hasKey, err := exists(d.path(nextKeyFile))
	if err != nil {
		return err
	}
	hasCert, err := exists(d.path(nextCertFile))
	if err != nil {
		return err
	}

	switch {
	case hasKey && !hasCert:
		return os.Remove(d.path(nextKeyFile))
	case !hasCert:
		return nil
	}
	if hasKey {
		if err := os.Rename(d.path(nextKeyFile), d.path(KeyFile)); err != nil {
			return err
		}
		if err := syncDir(string(d)); err != nil {
			return err
		}
	}
	if err := os.Rename(d.path(nextCertFile), d.path(CertFile)); err != nil {
		return err
	}
	return syncDir(string(d))
}

// SaveCAs replaces the trust bundle.
func (d Dir) SaveCAs(cas [][]byte) error {
	if err := pki.WriteFile(d.path(CAFile), pki.EncodeCerts(cas...), pki.PublicMode); err != nil {
		return fmt.Errorf("save trust bundle: %w", err)
	}
	return nil
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
