// Command hosttree writes a prepared host tree for demos and end-to-end tests: the
// compliant Debian server of package checkstest, optionally drifted, so that ward-agent
// can run with --host-root pointing at it and never at the real /etc.
//
//	hosttree [--password-ssh] ROOT
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wardsec/ward/agent/internal/checks/checkstest"
)

func main() {
	passwordSSH := flag.Bool("password-ssh", false,
		"enable SSH password authentication (fails SSH-002, remediated by RB-SSH-001)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: hosttree [--password-ssh] ROOT")
		os.Exit(2)
	}
	if err := write(flag.Arg(0), *passwordSSH); err != nil {
		fmt.Fprintln(os.Stderr, "hosttree:", err)
		os.Exit(1)
	}
}

func write(root string, passwordSSH bool) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	if err := checkstest.WriteDebian(root); err != nil {
		return err
	}
	if !passwordSSH {
		return nil
	}

	path := filepath.Join(root, "etc/ssh/sshd_config")
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	from := []byte("\nPasswordAuthentication no\n")
	if !bytes.Contains(data, from) {
		return fmt.Errorf("%s sets no PasswordAuthentication to change", path)
	}
	data = bytes.Replace(data, from, []byte("\nPasswordAuthentication yes\n"), 1)
	return os.WriteFile(path, data, 0o600)
}
