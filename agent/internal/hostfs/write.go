package hostfs

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
)

// WriteOptions describe a file WriteFile creates. For an existing file they are ignored
// and its mode and owner are kept.
type WriteOptions struct {
	Mode     fs.FileMode // mode of a new file; zero means 0644
	UID, GID int         // owner of a new file; -1 keeps the agent's
}

// WriteFile replaces host path p with data atomically (a temporary file renamed over it),
// keeping an existing file's mode and owner. It refuses a symbolic link (ErrSymlink) and
// a missing parent directory.
func (f *FS) WriteFile(p string, data []byte, opts WriteOptions) error {
	real, err := f.writable(p)
	if err != nil {
		return err
	}

	mode, uid, gid := opts.Mode, opts.UID, opts.GID
	if mode == 0 {
		mode = 0o644
	}
	if fi, err := os.Stat(real); err == nil {
		mode = fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}

	tmp, err := os.CreateTemp(filepath.Dir(real), ".ward-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", p, unwrapPath(err))
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := f.setAttrs(tmp.Name(), mode, uid, gid); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := os.Rename(tmp.Name(), real); err != nil {
		return fmt.Errorf("write %s: %w", p, unwrapPath(err))
	}
	return nil
}

func (f *FS) setAttrs(real string, mode fs.FileMode, uid, gid int) error {
	if err := os.Chmod(real, mode); err != nil {
		return unwrapPath(err)
	}
	if uid < 0 && gid < 0 {
		return nil
	}
	if err := os.Lchown(real, uid, gid); err != nil && !(os.Geteuid() != 0 && uid < 0) {
		return unwrapPath(err)
	}
	return nil
}

// writable resolves the parent of p, refuses p itself being a symbolic link and returns
// the real path to write.
func (f *FS) writable(p string) (string, error) {
	dir, err := f.Resolve(path.Dir(path.Clean("/" + p)))
	if err != nil {
		return "", err
	}
	host := path.Join(dir, path.Base(p))
	real := f.Real(host)
	if fi, err := os.Lstat(real); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return "", fmt.Errorf("write %s: %w", p, ErrSymlink)
	}
	return real, nil
}

// Chmod sets the permission bits of host path p (not following a final symbolic link).
func (f *FS) Chmod(p string, mode fs.FileMode) error {
	real, err := f.writable(p)
	if err != nil {
		return err
	}
	if err := os.Chmod(real, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", p, unwrapPath(err))
	}
	return nil
}

// Chown sets the owner of host path p; -1 keeps a field.
func (f *FS) Chown(p string, uid, gid int) error {
	real, err := f.writable(p)
	if err != nil {
		return err
	}
	if err := os.Lchown(real, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", p, unwrapPath(err))
	}
	return nil
}

// Owner returns the numeric owner and group of host path p.
func (f *FS) Owner(p string) (uid, gid int, err error) {
	fi, err := f.Stat(p)
	if err != nil {
		return 0, 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, fmt.Errorf("owner %s: not available on this system", p)
	}
	return int(st.Uid), int(st.Gid), nil
}

// MkdirAll creates host directory p and its parents with mode perm.
func (f *FS) MkdirAll(p string, perm fs.FileMode) error {
	r, err := f.real(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r, perm); err != nil {
		return fmt.Errorf("mkdir %s: %w", p, unwrapPath(err))
	}
	return nil
}
