package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/pki"
)

// certFile serves the controller's certificate from its PEM files and reloads them when
// they change on disk, so a new serving certificate needs no restart. A reload that fails
// keeps the certificate in use and logs why. It is safe for concurrent use.
type certFile struct {
	certPath, keyPath string
	log               *slog.Logger

	mu      sync.Mutex // guards the fields below
	cert    *tls.Certificate
	modTime time.Time // of certPath when cert was loaded
	failed  time.Time // modTime of the last version that failed to load
}

// loadCertFile loads the pair once; later changes are picked up by get.
func loadCertFile(certPath, keyPath string, log *slog.Logger) (*certFile, error) {
	c := &certFile{certPath: certPath, keyPath: keyPath, log: log}
	fi, err := os.Stat(certPath)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	pair, err := pki.LoadKeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	c.cert, c.modTime = &pair, fi.ModTime()
	return c, nil
}

// get is a tls.Config.GetCertificate hook. It costs one stat per handshake.
func (c *certFile) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()

	fi, err := os.Stat(c.certPath)
	if err != nil || fi.ModTime().Equal(c.modTime) || fi.ModTime().Equal(c.failed) {
		return c.cert, nil
	}

	pair, err := pki.LoadKeyPair(c.certPath, c.keyPath)
	if err != nil {
		c.failed = fi.ModTime()
		c.log.Warn("serving certificate reload failed; keeping the current one",
			logkey.Path, c.certPath, logkey.Error, err)
		return c.cert, nil
	}
	c.cert, c.modTime = &pair, fi.ModTime()
	if pair.Leaf != nil {
		c.log.Info("serving certificate reloaded", logkey.Serial,
			pair.Leaf.SerialNumber.Text(16), logkey.NotAfter, pair.Leaf.NotAfter)
	}
	return c.cert, nil
}
