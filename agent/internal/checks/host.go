package checks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"

	"github.com/wardsec/ward/agent/internal/hostfs"
	"github.com/wardsec/ward/agent/internal/svcpkg"
	"github.com/wardsec/ward/pkg/baseline"
)

func (e *Evaluator) service(ctx context.Context, t *baseline.Test) Outcome {
	s, err := e.svc.Service(ctx, t.Service)
	if err != nil {
		o := errored(err)
		o.usedServices = true
		return o
	}
	obs := fmt.Sprintf("%s active=%t enabled=%t", t.Service, s.Active, s.Enabled)
	if !s.Exists {
		obs = t.Service + " not installed"
	}
	var o Outcome
	switch t.Kind {
	case baseline.KindServiceActive:
		o = judge(s.Active, obs, t.Service+" is not active")
	case baseline.KindServiceEnabled:
		o = judge(s.Enabled, obs, t.Service+" is not enabled")
	default:
		o = judge(!s.Active && !s.Enabled, obs, t.Service+" is active or enabled")
	}
	o.usedServices = true
	if e.svc.Simulated() {
		o.Observed += " (simulated)"
	}
	return o
}

func (e *Evaluator) pkg(ctx context.Context, t *baseline.Test) Outcome {
	p, err := e.svc.Package(ctx, t.Package)
	if err != nil {
		o := errored(err)
		o.usedServices = true
		return o
	}
	obs := t.Package + " not installed"
	if p.Installed {
		obs = t.Package + " " + p.Version
	}
	if e.svc.Simulated() {
		obs += " (simulated)"
	}

	var o Outcome
	switch {
	case t.Kind == baseline.KindPackageAbsent:
		o = judge(!p.Installed, obs, t.Package+" is installed")
	case !p.Installed:
		o = fail(obs, "%s is not installed", t.Package)
	case t.MinVersion != "" && e.svc.CompareVersions(p.Version, t.MinVersion) < 0:
		o = fail(obs, "%s %s is older than %s", t.Package, p.Version, t.MinVersion)
	default:
		o = pass(obs)
	}
	o.usedServices = true
	return o
}

func judge(ok bool, obs, why string) Outcome {
	if ok {
		return pass(obs)
	}
	return fail(obs, "%s", why)
}

// users applies a users rule to /etc/passwd (and /etc/shadow for passwords).
func (e *Evaluator) users(t *baseline.Test) Outcome {
	accts, err := e.fs.Accounts()
	if err != nil {
		return errored(err)
	}

	var bad []string
	switch t.Rule {
	case baseline.RuleEmptyPassword:
		data, err := e.fs.ReadFile("/etc/shadow")
		if err != nil {
			return errored(err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			if f := strings.Split(l, ":"); len(f) >= 2 && f[0] != "" && f[1] == "" {
				bad = append(bad, f[0])
			}
		}
	case baseline.RuleOnlyRootUID0:
		for _, a := range accts {
			if a.UID == 0 && a.Name != "root" {
				bad = append(bad, a.Name)
			}
		}
	case baseline.RuleUniqueUIDs, baseline.RuleUniqueNames:
		bad = duplicates(accts, t.Rule == baseline.RuleUniqueUIDs)
	case baseline.RuleNoSharedLogins:
		for _, a := range accts {
			if contains(t.Names, a.Name) && loginShell(a.Shell) {
				bad = append(bad, a.Name)
			}
		}
	default:
		return errored(fmt.Errorf("unknown users rule %q", t.Rule))
	}

	if len(bad) > 0 {
		sort.Strings(bad)
		return fail("accounts: "+strings.Join(bad, ", "), "rule %s broken", t.Rule)
	}
	return pass(fmt.Sprintf("%d accounts, rule %s holds", len(accts), t.Rule))
}

func duplicates(accts []hostfs.Account, byUID bool) []string {
	seen := map[string]string{}
	var bad []string
	for _, a := range accts {
		k := a.Name
		if byUID {
			k = fmt.Sprint(a.UID)
		}
		if first, ok := seen[k]; ok {
			bad = append(bad, first+"="+a.Name)
			continue
		}
		seen[k] = a.Name
	}
	return bad
}

func loginShell(sh string) bool {
	return sh != "" && !strings.HasSuffix(sh, "/nologin") && !strings.HasSuffix(sh, "/false") &&
		!strings.HasSuffix(sh, "/sync")
}

// maxCommandOutput bounds what a command test reads.
const maxCommandOutput = 64 << 10

// command runs an allowlisted program, resolved under the host root, with fixed
// arguments, and tests its output.
func (e *Evaluator) command(ctx context.Context, t *baseline.Test) Outcome {
	spec, ok := baseline.Commands[t.Command]
	if !ok {
		return errored(fmt.Errorf("command %q is not in the allowlist", t.Command))
	}
	resolved, err := e.fs.Resolve(spec.Path)
	if err != nil {
		return errored(err)
	}
	if !e.fs.Exists(resolved) {
		return errored(fmt.Errorf("%s is not installed", spec.Path))
	}

	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.fs.Real(resolved), spec.Args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	var out bytes.Buffer
	cmd.Stdout = &limitWriter{w: &out, n: maxCommandOutput}
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return errored(fmt.Errorf("run %s: %w", t.Command, err))
	}
	if ctx.Err() != nil {
		return errored(fmt.Errorf("run %s: timed out after %s", t.Command, CommandTimeout))
	}

	text := strings.TrimSpace(out.String())
	obs := bound(text, 200)
	if t.Pattern != "" {
		re, err := e.re(t.Pattern)
		if err != nil {
			return errored(err)
		}
		if !re.MatchString(text) {
			return fail(obs, "output does not match %s", t.Pattern)
		}
	}
	if msg := e.expect(t.Expect, text); !t.Expect.IsZero() && msg != "" {
		return fail(obs, "%s", msg)
	}
	return pass(obs)
}

type limitWriter struct {
	w *bytes.Buffer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if room := l.n - l.w.Len(); room > 0 {
		if len(p) > room {
			l.w.Write(p[:room])
		} else {
			l.w.Write(p)
		}
	}
	return len(p), nil
}

// DetectPlatform reads the host's /etc/os-release: ID and ID_LIKE decide the platform and
// the package manager family. Unknown hosts get "" and FamilyUnknown.
func DetectPlatform(fsys *hostfs.FS) (baseline.Platform, svcpkg.Family) {
	data, err := fsys.ReadFile("/etc/os-release")
	if err != nil {
		data, _ = fsys.ReadFile("/usr/lib/os-release")
	}
	ids := ""
	for _, l := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if ok && (k == "ID" || k == "ID_LIKE") {
			ids += " " + strings.ToLower(strings.Trim(v, `"'`))
		}
	}
	for _, id := range strings.Fields(ids) {
		switch id {
		case "nixos":
			return baseline.PlatformNixOS, svcpkg.FamilyUnknown
		case "debian", "ubuntu":
			return baseline.PlatformDebian, svcpkg.FamilyDeb
		case "rhel", "fedora", "centos", "rocky", "almalinux", "ol":
			return baseline.PlatformRHEL, svcpkg.FamilyRPM
		}
	}
	return "", svcpkg.FamilyUnknown
}
