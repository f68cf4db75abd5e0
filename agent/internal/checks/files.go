package checks

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/wardsec/ward/pkg/baseline"
)

func (e *Evaluator) fileExists(t *baseline.Test) Outcome {
	matches, err := e.fs.Glob(t.Path)
	if err != nil {
		return errored(err)
	}
	exists := len(matches) > 0
	obs := "absent"
	if exists {
		obs = strings.Join(matches, ", ")
	}
	if exists == (t.Kind == baseline.KindFileExists) {
		return pass(obs)
	}
	if exists {
		return fail(obs, "%s exists", t.Path)
	}
	return fail(obs, "%s does not exist", t.Path)
}

func (e *Evaluator) fileMode(t *baseline.Test) Outcome {
	max, _ := baseline.ParseMode(t.Mode)
	matches, err := e.fs.Glob(t.Path)
	if err != nil {
		return errored(err)
	}
	if len(matches) == 0 {
		if strings.ContainsAny(t.Path, "*?[") {
			return pass("no file matches " + t.Path)
		}
		return errored(fmt.Errorf("%s does not exist", t.Path))
	}

	var obs, bad []string
	for _, p := range matches {
		fi, err := e.fs.Stat(p)
		if err != nil {
			return errored(err)
		}
		uid, gid, err := e.fs.Owner(p)
		if err != nil {
			return errored(err)
		}
		owner, group := e.fs.UserName(uid), e.groupName(gid)
		perm := uint32(fi.Mode().Perm())
		obs = append(obs, fmt.Sprintf("%s %04o %s:%s", p, perm, owner, group))
		switch {
		case perm&^max != 0:
			bad = append(bad, fmt.Sprintf("%s mode %04o exceeds %04o", p, perm, max))
		case t.Owner != "" && owner != t.Owner:
			bad = append(bad, fmt.Sprintf("%s owner %s, want %s", p, owner, t.Owner))
		case t.Group != "" && group != t.Group:
			bad = append(bad, fmt.Sprintf("%s group %s, want %s", p, group, t.Group))
		}
	}
	if len(bad) > 0 {
		return fail(strings.Join(obs, ", "), "%s", strings.Join(bad, "; "))
	}
	return pass(strings.Join(obs, ", "))
}

func (e *Evaluator) groupName(gid int) string {
	data, err := e.fs.ReadFile("/etc/group")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Split(line, ":")
			if len(f) >= 3 && f[2] == fmt.Sprint(gid) {
				return f[0]
			}
		}
	}
	return fmt.Sprint(gid)
}

// regex evaluates regex_match and regex_no_match over every file matching Path.
func (e *Evaluator) regex(t *baseline.Test) Outcome {
	re, err := e.re(t.Pattern)
	if err != nil {
		return errored(err)
	}
	files, err := e.fs.Glob(t.Path)
	if err != nil {
		return errored(err)
	}
	want := t.Kind == baseline.KindRegexMatch

	for _, p := range files {
		lines, err := e.readConfig(p, t.Include)
		if err != nil {
			return errored(err)
		}
		for _, l := range lines {
			if l.text != "" && re.MatchString(l.text) {
				obs := fmt.Sprintf("%s:%d: %s", l.file, l.line, bound(l.text, 200))
				if want {
					return pass(obs)
				}
				return fail(obs, "forbidden pattern found")
			}
		}
	}
	obs := "no match in " + t.Path
	if len(files) == 0 {
		obs = "no file matches " + t.Path
	}
	if want {
		return fail(obs, "required pattern not found")
	}
	return pass(obs)
}

// line is one line of a configuration file, with where it came from.
type line struct {
	file string
	line int
	text string
}

// readConfig reads p; with include "sshd" it expands Include directives in place, as sshd
// does (relative patterns under /etc/ssh, globs sorted). A missing file read through an
// Include is skipped, as sshd skips non-matching globs.
func (e *Evaluator) readConfig(p, include string) ([]line, error) {
	return e.readConfigDepth(p, include, 0)
}

func (e *Evaluator) readConfigDepth(p, include string, depth int) ([]line, error) {
	if depth > 16 {
		return nil, fmt.Errorf("%s: Include nested too deeply", p)
	}
	data, err := e.fs.ReadFile(p)
	if err != nil {
		return nil, err
	}

	var out []line
	for i, text := range strings.Split(string(data), "\n") {
		text = strings.TrimSpace(text)
		fields := strings.Fields(text)
		if include != baseline.SyntaxSSHD || len(fields) < 2 || !strings.EqualFold(fields[0], "include") {
			out = append(out, line{file: p, line: i + 1, text: text})
			continue
		}
		for _, pat := range fields[1:] {
			if !path.IsAbs(pat) {
				pat = path.Join("/etc/ssh", pat)
			}
			files, err := e.fs.Glob(pat)
			if err != nil {
				return nil, err
			}
			for _, f := range files {
				sub, err := e.readConfigDepth(f, include, depth+1)
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					return nil, err
				}
				out = append(out, sub...)
			}
		}
	}
	return out, nil
}

// keyValue finds a setting and tests its value.
func (e *Evaluator) keyValue(t *baseline.Test) Outcome {
	include := ""
	if t.Syntax == baseline.SyntaxSSHD {
		include = baseline.SyntaxSSHD
	}
	lines, err := e.readConfig(t.Path, include)
	if errors.Is(err, fs.ErrNotExist) && t.Default == "" {
		return fail("file absent", "%s does not exist", t.Path)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errored(err)
	}

	val, where, found := lookup(lines, t.Key, t.Syntax)
	obs := fmt.Sprintf("%s %s (%s)", t.Key, val, where)
	if !found {
		if t.Default == "" {
			return fail(t.Key+" not set", "%s is not set in %s", t.Key, t.Path)
		}
		val = t.Default
		obs = fmt.Sprintf("%s %s (default; not set)", t.Key, val)
	}
	if msg := e.expect(t.Expect, val); msg != "" {
		return fail(obs, "%s", msg)
	}
	return pass(obs)
}

// lookup returns a key's value: the first occurrence for sshd (before any Match block),
// the last for the other syntaxes.
func lookup(lines []line, key, syntax string) (val, where string, found bool) {
	for _, l := range lines {
		if l.text == "" || strings.HasPrefix(l.text, "#") || strings.HasPrefix(l.text, ";") {
			continue
		}
		k, v, ok := splitSetting(l.text, syntax)
		if syntax == baseline.SyntaxSSHD && strings.EqualFold(k, "match") {
			break
		}
		if !ok || !keyEqual(k, key, syntax) {
			continue
		}
		val, where, found = v, fmt.Sprintf("%s:%d", l.file, l.line), true
		if syntax == baseline.SyntaxSSHD {
			return val, where, found
		}
	}
	return val, where, found
}

func keyEqual(a, b, syntax string) bool {
	if syntax == baseline.SyntaxSSHD {
		return strings.EqualFold(a, b)
	}
	return a == b
}

// splitSetting splits "key value" or "key = value" (sshd accepts both).
func splitSetting(text, syntax string) (key, val string, ok bool) {
	if syntax == baseline.SyntaxEquals || (syntax == baseline.SyntaxSSHD && strings.Contains(text, "=") &&
		!strings.ContainsAny(strings.SplitN(text, "=", 2)[0], " \t")) {
		k, v, ok := strings.Cut(text, "=")
		return strings.TrimSpace(k), unquote(strings.TrimSpace(v)), ok
	}
	f := strings.Fields(text)
	if len(f) < 2 {
		return "", "", false
	}
	return f[0], unquote(strings.Join(f[1:], " ")), true
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"') {
		return s[1 : len(s)-1]
	}
	return s
}

func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
