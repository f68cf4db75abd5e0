package checks

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/wardsec/ward/pkg/baseline"
)

// sysctl reads /proc/sys under the host root; when the kernel value is not there (a
// prepared tree without it), the persistent configuration decides: /etc/sysctl.conf then
// /etc/sysctl.d/*.conf, last wins.
func (e *Evaluator) sysctl(t *baseline.Test) Outcome {
	p := "/proc/sys/" + strings.ReplaceAll(t.Key, ".", "/")
	val, src := "", p
	data, err := e.fs.ReadFile(p)
	switch {
	case err == nil:
		val = strings.Join(strings.Fields(string(data)), " ")
	case errors.Is(err, fs.ErrNotExist):
		v, where, ok := e.sysctlConfigured(t.Key)
		if !ok {
			return errored(fmt.Errorf("%s: not in /proc/sys and not configured", t.Key))
		}
		val, src = v, where
	default:
		return errored(err)
	}

	obs := fmt.Sprintf("%s = %s (%s)", t.Key, val, src)
	if msg := e.expect(t.Expect, val); msg != "" {
		return fail(obs, "%s", msg)
	}
	return pass(obs)
}

func (e *Evaluator) sysctlConfigured(key string) (val, where string, found bool) {
	files := []string{"/etc/sysctl.conf"}
	more, _ := e.fs.Glob("/etc/sysctl.d/*.conf")
	files = append(files, more...)
	for _, f := range files {
		lines, err := e.readConfig(f, "")
		if err != nil {
			continue
		}
		if v, w, ok := lookup(lines, key, baseline.SyntaxEquals); ok {
			val, where, found = v, w, true
		}
	}
	return val, where, found
}

// module checks /proc/modules and the modprobe configuration.
func (e *Evaluator) module(t *baseline.Test) Outcome {
	name := strings.ReplaceAll(t.Module, "-", "_")
	loaded, err := e.moduleLoaded(name)
	if err != nil {
		return errored(err)
	}
	if t.Kind == baseline.KindModuleLoaded {
		if loaded {
			return pass(t.Module + " loaded")
		}
		return fail(t.Module+" not loaded", "module %s is not loaded", t.Module)
	}

	how := e.moduleDisabledBy(name)
	switch {
	case loaded:
		return fail(t.Module+" loaded", "module %s is loaded", t.Module)
	case how == "":
		return fail(t.Module+" loadable", "module %s is neither blacklisted nor install-disabled", t.Module)
	}
	return pass(how)
}

func (e *Evaluator) moduleLoaded(name string) (bool, error) {
	data, err := e.fs.ReadFile("/proc/modules")
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			return true, nil
		}
	}
	return false, nil
}

// moduleDisabledBy returns where the module is disabled ("file:line: text"), or "".
func (e *Evaluator) moduleDisabledBy(name string) string {
	var files []string
	for _, dir := range []string{"/etc/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d"} {
		m, _ := e.fs.Glob(dir + "/*.conf")
		files = append(files, m...)
	}
	for _, f := range files {
		lines, err := e.readConfig(f, "")
		if err != nil {
			continue
		}
		for _, l := range lines {
			fl := strings.Fields(l.text)
			if len(fl) < 2 || strings.ReplaceAll(fl[1], "-", "_") != name {
				continue
			}
			install := fl[0] == "install" && len(fl) >= 3 &&
				(strings.HasSuffix(fl[2], "/false") || strings.HasSuffix(fl[2], "/true"))
			if install || fl[0] == "blacklist" {
				return fmt.Sprintf("%s:%d: %s", l.file, l.line, l.text)
			}
		}
	}
	return ""
}

// mount checks the options of the last mount on t.Mount in /proc/mounts.
func (e *Evaluator) mount(t *baseline.Test) Outcome {
	data, err := e.fs.ReadFile("/proc/mounts")
	if err != nil {
		return errored(err)
	}
	var opts string
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 4 && f[1] == t.Mount {
			opts = f[3]
		}
	}
	if opts == "" {
		return fail(t.Mount+" not a separate mount", "%s is not mounted separately", t.Mount)
	}
	have := strings.Split(opts, ",")
	var missing []string
	for _, o := range t.Options {
		if !contains(have, o) {
			missing = append(missing, o)
		}
	}
	obs := t.Mount + " " + opts
	if len(missing) > 0 {
		return fail(obs, "missing options: %s", strings.Join(missing, ","))
	}
	return pass(obs)
}

// listening reads /proc/net/{tcp,tcp6} (LISTEN sockets) or {udp,udp6} (bound sockets).
func (e *Evaluator) listening(t *baseline.Test) Outcome {
	open := map[int]bool{}
	found := false
	for _, f := range []string{t.Protocol, t.Protocol + "6"} {
		data, err := e.fs.ReadFile("/proc/net/" + f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return errored(err)
		}
		found = true
		for _, port := range listeningPorts(string(data), t.Protocol) {
			open[port] = true
		}
	}
	if !found {
		return errored(fmt.Errorf("/proc/net/%s is missing", t.Protocol))
	}

	var hits []string
	for _, p := range t.Ports {
		if open[p] {
			hits = append(hits, fmt.Sprintf("%d/%s", p, t.Protocol))
		}
	}
	if t.Kind == baseline.KindListening {
		if len(hits) > 0 {
			return pass("listening: " + strings.Join(hits, ", "))
		}
		return fail("not listening", "nothing listens on %v/%s", t.Ports, t.Protocol)
	}
	if len(hits) > 0 {
		return fail("listening: "+strings.Join(hits, ", "), "forbidden ports are open")
	}
	return pass(fmt.Sprintf("nothing listens on %v/%s", t.Ports, t.Protocol))
}

// listeningPorts parses a /proc/net table: local_address is field 1 ("0100007F:0016"),
// st field 3 (0A = LISTEN for TCP; 07 = unconnected for UDP).
func listeningPorts(table, proto string) []int {
	want := "0A"
	if proto == "udp" {
		want = "07"
	}
	var out []int
	for i, l := range strings.Split(table, "\n") {
		f := strings.Fields(l)
		if i == 0 || len(f) < 4 || f[3] != want {
			continue
		}
		_, portHex, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		if port, err := strconv.ParseUint(portHex, 16, 16); err == nil {
			out = append(out, int(port))
		}
	}
	return out
}
