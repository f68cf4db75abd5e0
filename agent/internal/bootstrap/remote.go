package bootstrap

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// maxOutput bounds the remote output kept in an error.
const maxOutput = 512

// remote runs commands and writes files on a target over one SSH connection.
type remote struct {
	timeout time.Duration // of each command
	client  *ssh.Client
	sftp    *sftp.Client // nil when the server offers no sftp subsystem
}

func newRemote(c *ssh.Client, timeout time.Duration) *remote {
	r := &remote{client: c, timeout: timeout}
	if s, err := sftp.NewClient(c); err == nil {
		r.sftp = s
	}
	return r
}

func (r *remote) Close() error {
	if r.sftp != nil {
		r.sftp.Close()
	}
	return r.client.Close()
}

// run runs a shell command with stdin and returns its standard output. A failure carries
// the command's (bounded) standard error. The end of ctx or of the command timeout closes
// the session.
func (r *remote) run(ctx context.Context, cmd string, stdin io.Reader) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	s, err := r.client.NewSession()
	if err != nil {
		return "", fmt.Errorf("open session: %w", err)
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr, s.Stdin = &stdout, &stderr, stdin

	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		s.Close()
		return "", fmt.Errorf("remote command: %w after %s", ctx.Err(), r.timeout)
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		if len(msg) > maxOutput {
			msg = msg[:maxOutput] + " [truncated]"
		}
		if msg != "" {
			return stdout.String(), fmt.Errorf("%w: %s", err, msg)
		}
		return stdout.String(), err
	}
	return stdout.String(), nil
}

// writeFile writes data to name atomically (a temporary file beside it, renamed) with
// mode, creating the parent directories (mode 0755, or 0700 for a 0600 file). It uses
// sftp when the server offers it and a shell pipe otherwise.
func (r *remote) writeFile(ctx context.Context, name string, data []byte, mode os.FileMode) error {
	dirMode := "0755"
	if mode&0o077 == 0 {
		dirMode = "0700"
	}
	tmp := name + ".ward-tmp"
	if r.sftp != nil {
		if err := r.sftpWrite(name, tmp, data, mode); err == nil {
			return nil
		}
		// Fall through: a server without rights for sftp may still accept the pipe.
	}
	cmd := fmt.Sprintf("umask 077 && mkdir -p -m %s %s && cat > %s && chmod %04o %s && mv -f %s %s",
		dirMode, q(path.Dir(name)), q(tmp), mode.Perm(), q(tmp), q(tmp), q(name))
	_, err := r.run(ctx, cmd, bytes.NewReader(data))
	return err
}

func (r *remote) sftpWrite(name, tmp string, data []byte, mode os.FileMode) error {
	if err := r.sftp.MkdirAll(path.Dir(name)); err != nil {
		return err
	}
	f, err := r.sftp.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := r.sftp.Chmod(tmp, mode.Perm()); err != nil {
		return err
	}
	return r.sftp.PosixRename(tmp, name)
}

// q quotes s for a POSIX shell.
func q(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
