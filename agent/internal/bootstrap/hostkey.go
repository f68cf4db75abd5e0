package bootstrap

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Host key trust, as HostKey.Trust reports it.
const (
	// TrustKnownHosts means the key matched a line of the collector's known_hosts.
	TrustKnownHosts = "known_hosts"
	// TrustFirstUse means the host was unknown, its key was accepted and recorded.
	TrustFirstUse = "trust_on_first_use"
)

// HostKey is the host key a target presented and why it was trusted: the evidence of the
// SSH connection.
type HostKey struct {
	Type        string // "ssh-ed25519", ...
	Fingerprint string // "SHA256:..."
	Trust       string // TrustKnownHosts or TrustFirstUse
}

// ErrHostKeyMismatch is wrapped by the error of a target whose key differs from the one
// known_hosts holds for it.
var ErrHostKeyMismatch = errors.New("host key does not match known_hosts")

// ErrHostUnknown is wrapped when a target is not in known_hosts and trust on first use
// is off.
var ErrHostUnknown = errors.New("host is not in known_hosts and trust on first use is off")

// knownHostsMu serialises reading and appending the known_hosts files of this process.
var knownHostsMu sync.Mutex

// hostKeyChecker verifies a target's key against path and, when tofu is set, records an
// unknown host's key there. seen receives the accepted key.
func hostKeyChecker(path string, tofu bool, seen *HostKey) (ssh.HostKeyCallback, error) {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	f.Close()
	check, err := knownhosts.New(path)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}

	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		*seen = HostKey{Type: key.Type(), Fingerprint: ssh.FingerprintSHA256(key)}
		err := check(hostname, remote, key)
		var ke *knownhosts.KeyError
		switch {
		case err == nil:
			seen.Trust = TrustKnownHosts
			return nil
		case !errors.As(err, &ke):
			return err
		case len(ke.Want) > 0:
			want := ""
			for i, k := range ke.Want {
				if i > 0 {
					want += ", "
				}
				want += ssh.FingerprintSHA256(k.Key)
			}
			return fmt.Errorf("%w: %s presented %s %s, known_hosts has %s", ErrHostKeyMismatch,
				hostname, key.Type(), seen.Fingerprint, want)
		case !tofu:
			return fmt.Errorf("%w: %s presented %s %s", ErrHostUnknown, hostname, key.Type(),
				seen.Fingerprint)
		}
		if err := appendKnownHost(path, hostname, key); err != nil {
			return err
		}
		seen.Trust = TrustFirstUse
		return nil
	}, nil
}

func appendKnownHost(path, hostname string, key ssh.PublicKey) error {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key) + "\n"
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("record host key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("record host key: %w", err)
	}
	return f.Close()
}
