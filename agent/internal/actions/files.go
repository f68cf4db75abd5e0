package actions

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"github.com/wardsec/ward/agent/internal/hostfs"
	"github.com/wardsec/ward/pkg/baseline"
)

// ensureLine makes line present in path: it replaces the first line matching `match`
// (a regular expression), or appends it. create=true creates a missing file with mode.
func (r *Runner) ensureLine(_ context.Context, p map[string]string, dry bool) (Outcome, error) {
	lines, exists, err := r.readLines(p["path"], p["create"] == "true")
	if err != nil {
		return Outcome{}, err
	}
	want := p["line"]
	for _, l := range lines {
		if l == want {
			return Outcome{Output: p["path"] + ": line already present"}, nil
		}
	}

	done := false
	if p["match"] != "" {
		re, err := regexp.Compile(p["match"])
		if err != nil {
			return Outcome{}, fmt.Errorf("ensure_line: match: %w", err)
		}
		for i, l := range lines {
			if re.MatchString(l) {
				lines[i], done = want, true
				break
			}
		}
	}
	if !done {
		lines = append(lines, want)
	}
	return r.writeLines(p, lines, exists, dry, fmt.Sprintf("%s: set line %q", p["path"], want))
}

// ensureKeyValue sets key to value: the first effective occurrence is rewritten (for sshd,
// the first before any Match block; a new line goes before the first Include or Match so
// that it wins), later occurrences are commented out.
func (r *Runner) ensureKeyValue(_ context.Context, p map[string]string, dry bool) (Outcome, error) {
	syntax := p["syntax"]
	if syntax == "" {
		syntax = baseline.SyntaxSpace
	}
	lines, exists, err := r.readLines(p["path"], p["create"] == "true")
	if err != nil {
		return Outcome{}, err
	}
	key, val := p["key"], p["value"]
	setting := key + " " + val
	if syntax == baseline.SyntaxEquals {
		setting = key + "=" + val
	}

	out, changed := rewriteSetting(lines, key, setting, syntax)
	if !changed {
		return Outcome{Output: fmt.Sprintf("%s: %s already set", p["path"], key)}, nil
	}
	return r.writeLines(p, out, exists, dry, fmt.Sprintf("%s: set %s", p["path"], setting))
}

func rewriteSetting(lines []string, key, setting, syntax string) ([]string, bool) {
	out := make([]string, 0, len(lines)+1)
	placed, changed, insertAt := false, false, -1
	inMatch := false
	for _, l := range lines {
		k := settingKey(l, syntax)
		if syntax == baseline.SyntaxSSHD && (strings.EqualFold(k, "match") ||
			strings.EqualFold(k, "include")) && insertAt < 0 {
			insertAt = len(out)
		}
		if syntax == baseline.SyntaxSSHD && strings.EqualFold(k, "match") {
			inMatch = true
		}
		same := k != "" && (k == key || (syntax == baseline.SyntaxSSHD && strings.EqualFold(k, key)))
		switch {
		case !same || inMatch:
			out = append(out, l)
		case !placed && (syntax != baseline.SyntaxSSHD || insertAt < 0):
			placed = true
			changed = changed || strings.TrimSpace(l) != setting
			out = append(out, setting)
		default:
			changed = true
			out = append(out, "# "+l+" # disabled by Ward")
		}
	}
	if !placed {
		changed = true
		if insertAt >= 0 {
			out = append(out[:insertAt], append([]string{setting}, out[insertAt:]...)...)
		} else {
			out = append(out, setting)
		}
	}
	return out, changed
}

// settingKey returns the key of a setting line, or "" for comments and blanks.
func settingKey(l, syntax string) string {
	t := strings.TrimSpace(l)
	if t == "" || strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";") {
		return ""
	}
	if syntax == baseline.SyntaxEquals {
		k, _, _ := strings.Cut(t, "=")
		return strings.TrimSpace(k)
	}
	f := strings.FieldsFunc(t, func(r rune) bool { return r == ' ' || r == '\t' || r == '=' })
	return f[0]
}

func (r *Runner) readLines(path string, create bool) ([]string, bool, error) {
	data, err := r.cfg.FS.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	text := strings.TrimSuffix(string(data), "\n")
	if text == "" {
		return nil, true, nil
	}
	return strings.Split(text, "\n"), true, nil
}

func (r *Runner) writeLines(p map[string]string, lines []string, exists, dry bool, what string) (Outcome, error) {
	if dry {
		return Outcome{Changed: true, Output: "would " + what}, nil
	}
	mode := fs.FileMode(0o644)
	if p["mode"] != "" {
		m, err := baseline.ParseMode(p["mode"])
		if err != nil {
			return Outcome{}, err
		}
		mode = fs.FileMode(m)
	}
	if !exists {
		if err := r.cfg.FS.MkdirAll(parent(p["path"]), 0o755); err != nil {
			return Outcome{}, err
		}
	}
	data := []byte(strings.Join(lines, "\n") + "\n")
	err := r.cfg.FS.WriteFile(p["path"], data, hostfs.WriteOptions{Mode: mode, UID: 0, GID: 0})
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Changed: true, Output: what}, nil
}

// setMode removes every permission bit not in mode (bits are never added) and sets the
// owner and group when given. path may be a glob; missing_ok=true accepts no match.
func (r *Runner) setMode(_ context.Context, p map[string]string, dry bool) (Outcome, error) {
	max, err := baseline.ParseMode(p["mode"])
	if err != nil {
		return Outcome{}, err
	}
	paths, err := r.cfg.FS.Glob(p["path"])
	if err != nil {
		return Outcome{}, err
	}
	if len(paths) == 0 {
		if p["missing_ok"] == "true" {
			return Outcome{Output: p["path"] + ": no such file; nothing to do"}, nil
		}
		return Outcome{}, fmt.Errorf("set_mode: %s does not exist", p["path"])
	}

	var notes []string
	changed := false
	for _, path := range paths {
		c, note, err := r.setOneMode(path, fs.FileMode(max), p["owner"], p["group"], dry)
		if err != nil {
			return Outcome{}, err
		}
		changed = changed || c
		notes = append(notes, note)
	}
	return Outcome{Changed: changed, Output: strings.Join(notes, "; ")}, nil
}

func (r *Runner) setOneMode(path string, max fs.FileMode, owner, group string, dry bool) (bool, string, error) {
	fi, err := r.cfg.FS.Stat(path)
	if err != nil {
		return false, "", err
	}
	uid, gid, err := r.cfg.FS.Owner(path)
	if err != nil {
		return false, "", err
	}
	wantUID, wantGID := uid, gid
	if owner != "" {
		if wantUID, err = r.cfg.FS.LookupUID(owner); err != nil {
			return false, "", err
		}
	}
	if group != "" {
		if wantGID, err = r.cfg.FS.LookupGID(group); err != nil {
			return false, "", err
		}
	}
	perm := fi.Mode().Perm()
	newPerm := perm & max
	if newPerm == perm && wantUID == uid && wantGID == gid {
		return false, fmt.Sprintf("%s: already %04o", path, perm), nil
	}
	note := fmt.Sprintf("%s: %04o %d:%d -> %04o %d:%d", path, perm, uid, gid, newPerm, wantUID, wantGID)
	if dry {
		return true, "would set " + note, nil
	}
	if wantUID != uid || wantGID != gid {
		if err := r.cfg.FS.Chown(path, wantUID, wantGID); err != nil {
			return false, "", err
		}
	}
	if err := r.cfg.FS.Chmod(path, newPerm); err != nil {
		return false, "", err
	}
	return true, note, nil
}

// restoreFile writes a file the baseline manages with its content, mode and owner.
func (r *Runner) restoreFile(_ context.Context, p map[string]string, dry bool) (Outcome, error) {
	var b *baseline.Baseline
	if r.cfg.Baseline != nil {
		b = r.cfg.Baseline()
	}
	if b == nil {
		return Outcome{}, errors.New("restore_file: no baseline in force")
	}
	mf := b.ManagedFile(p["path"])
	if mf == nil {
		return Outcome{}, fmt.Errorf("restore_file: %s is not managed by baseline %s", p["path"], b.ID)
	}

	cur, err := r.cfg.FS.ReadFile(mf.Path)
	if err == nil && string(cur) == mf.Content {
		return Outcome{Output: mf.Path + ": content already as managed"}, nil
	}
	if dry {
		return Outcome{Changed: true, Output: "would restore " + mf.Path}, nil
	}
	mode, _ := baseline.ParseMode(mf.Mode)
	uid, err := r.cfg.FS.LookupUID(mf.Owner)
	if err != nil {
		return Outcome{}, err
	}
	gid, err := r.cfg.FS.LookupGID(mf.Group)
	if err != nil {
		return Outcome{}, err
	}
	if err := r.cfg.FS.MkdirAll(parent(mf.Path), 0o755); err != nil {
		return Outcome{}, err
	}
	if err := r.cfg.FS.WriteFile(mf.Path, []byte(mf.Content), hostfs.WriteOptions{
		Mode: fs.FileMode(mode), UID: uid, GID: gid}); err != nil {
		return Outcome{}, err
	}
	// An existing file keeps its attributes in WriteFile; enforce the managed ones.
	if err := r.cfg.FS.Chown(mf.Path, uid, gid); err != nil {
		return Outcome{}, err
	}
	if err := r.cfg.FS.Chmod(mf.Path, fs.FileMode(mode)); err != nil {
		return Outcome{}, err
	}
	return Outcome{Changed: true, Output: "restored " + mf.Path}, nil
}

func parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}
