package loadgen

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/pki"
)

// DevTrustDomain is the trust domain of development installations.
const DevTrustDomain = "loadgen.test"

// Files of a development installation beside the usual layout.
const (
	issuerCertFile = "loadgen/issuer.pem"
	issuerKeyFile  = "loadgen/issuer-key.pem"
)

// Issuer mints agent certificates without a controller, for measuring the bare server alone
// and for tests. It is not Ward's CA: it exists only in development installations written by
// WriteDevInstallation. Safe for concurrent use.
type Issuer struct {
	domain string
	cert   *x509.Certificate
	key    crypto.Signer
}

// WriteDevInstallation writes, under dir, the subset of an installation that loadgen reads
// (ca.pem and controller/{cert,key}.pem, for 127.0.0.1 and localhost) plus an issuer that
// mints agent certificates, and returns that issuer. Use it when no controller exists.
func WriteDevInstallation(dir string) (*Issuer, error) {
	caKey, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "loadgen development ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := sign(caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	iss := &Issuer{domain: DevTrustDomain, cert: caCert, key: caKey}

	srvKey, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	ctrlID := identity.Controller(DevTrustDomain, "loadgen")
	srvDER, err := iss.issue(ctrlID, srvKey.Public(), x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}

	return iss, writeDevFiles(dir, caDER, srvDER, srvKey, caKey)
}

// writeDevFiles writes the files of WriteDevInstallation.
func writeDevFiles(dir string, caDER, srvDER []byte, srvKey, caKey crypto.Signer) error {
	srvKeyPEM, err := pki.EncodeKey(srvKey)
	if err != nil {
		return err
	}
	caKeyPEM, err := pki.EncodeKey(caKey)
	if err != nil {
		return err
	}

	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"ca.pem", pki.EncodeCerts(caDER), pki.PublicMode},
		{"controller/cert.pem", pki.EncodeCerts(srvDER), pki.PublicMode},
		{"controller/key.pem", srvKeyPEM, pki.PrivateMode},
		{issuerCertFile, pki.EncodeCerts(caDER), pki.PublicMode},
		{issuerKeyFile, caKeyPEM, pki.PrivateMode},
	}
	for _, f := range files {
		if err := pki.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("write development installation: %w", err)
		}
	}
	return nil
}

// LoadIssuer reads the issuer of a development installation written by
// WriteDevInstallation.
func LoadIssuer(dir string) (*Issuer, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, issuerCertFile))
	if err != nil {
		return nil, fmt.Errorf("load issuer: %w", err)
	}
	certs, err := pki.ParseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("load issuer: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, issuerKeyFile))
	if err != nil {
		return nil, fmt.Errorf("load issuer: %w", err)
	}
	key, err := pki.ParseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load issuer: %w", err)
	}
	return &Issuer{domain: DevTrustDomain, cert: certs[0], key: key}, nil
}

// Mint returns an agent identity in tenant with a fresh key and a certificate valid for a day.
func (is *Issuer) Mint(tenant, agentID string) (Identity, error) {
	key, err := pki.NewKey()
	if err != nil {
		return Identity{}, err
	}
	id := identity.Agent(is.domain, tenant, agentID)
	der, err := is.issue(id, key.Public(), x509.ExtKeyUsageClientAuth)
	if err != nil {
		return Identity{}, err
	}
	return Identity{ID: agentID, Cert: tls.Certificate{Certificate: [][]byte{der},
		PrivateKey: key}}, nil
}

// issue signs a leaf certificate for the SPIFFE-style id.
func (is *Issuer) issue(id identity.ID, pub crypto.PublicKey,
	usage x509.ExtKeyUsage) ([]byte, error) {
	now := time.Now()
	tmpl := &x509.Certificate{
		NotBefore:   now.Add(-time.Minute),
		NotAfter:    now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{usage},
		URIs:        []*url.URL{id.URL()},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	return sign(tmpl, is.cert, pub, is.key)
}

// sign creates a certificate from tmpl with a random serial.
func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey,
	key crypto.Signer) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	if len(der) == 0 {
		return nil, errors.New("sign certificate: empty")
	}
	return der, nil
}
