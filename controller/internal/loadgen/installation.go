package loadgen

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/wardsec/ward/pkg/pki"
)

// Installation is a controller data directory as `ward-controller init` lays it out. Loadgen
// reads from it only: the trust bundle, the controller's serving certificate (which the bare
// server presents too, so that both servers see identical handshakes) and the admin
// operator's certificate.
type Installation struct {
	Dir string // the data directory
}

// Roots returns the installation's trust bundle (DIR/ca.pem).
func (in Installation) Roots() (*x509.CertPool, error) {
	return pki.LoadPool(filepath.Join(in.Dir, "ca.pem"))
}

// ServerTLS returns the TLS 1.3 server configuration of the controller: its serving
// certificate, client certificates verified when given (enrollment shares the port and has
// none) against the trust bundle and, as the controller does, the intermediate that signs
// agent certificates (DIR/ca/intermediate.pem, absent from a development installation), so
// that agents may present their leaf alone.
func (in Installation) ServerTLS() (*tls.Config, error) {
	roots, err := in.Roots()
	if err != nil {
		return nil, err
	}
	clientCAs := roots.Clone()
	data, err := os.ReadFile(filepath.Join(in.Dir, "ca", "intermediate.pem"))
	switch {
	case errors.Is(err, fs.ErrNotExist): // a development installation: the root signs
	case err != nil:
		return nil, fmt.Errorf("server tls: %w", err)
	default:
		inter, err := pki.ParseCerts(data)
		if err != nil {
			return nil, fmt.Errorf("server tls: intermediate: %w", err)
		}
		for _, c := range inter {
			clientCAs.AddCert(c)
		}
	}

	pair, err := pki.LoadKeyPair(filepath.Join(in.Dir, "controller", "cert.pem"),
		filepath.Join(in.Dir, "controller", "key.pem"))
	if err != nil {
		return nil, fmt.Errorf("server tls: %w", err)
	}

	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    clientCAs,
		NextProtos:   []string{"h2"},
	}, nil
}

// OperatorTLS returns a client configuration that presents the admin operator's certificate
// (DIR/operators/admin) and trusts the installation's bundle.
func (in Installation) OperatorTLS() (*tls.Config, error) {
	roots, err := in.Roots()
	if err != nil {
		return nil, err
	}

	pair, err := pki.LoadKeyPair(filepath.Join(in.Dir, "operators", "admin", "cert.pem"),
		filepath.Join(in.Dir, "operators", "admin", "key.pem"))
	if err != nil {
		return nil, fmt.Errorf("operator tls: %w", err)
	}
	return pki.ClientConfig(roots, "", func() (*tls.Certificate, error) { return &pair, nil }), nil
}
