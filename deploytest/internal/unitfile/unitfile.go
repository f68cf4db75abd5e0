// Package unitfile parses systemd unit files and drop-ins, enough to check their
// settings: sections, keys that may repeat, line continuations and comments. It does not
// expand specifiers or environment variables.
package unitfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// Unit is a parsed unit file: for each section, for each key, the values in file order.
// An empty assignment (Key=) is kept as an empty string, since it resets a list in
// systemd.
type Unit map[string]map[string][]string

// Parse reads a unit file.
func Parse(r io.Reader) (Unit, error) {
	u := Unit{}
	section := ""
	var pending string

	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if pending == "" && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			pending += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, pending = pending+line, ""

		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			return nil, fmt.Errorf("line %d: not a key=value in a section: %q", n, line)
		}
		key = strings.TrimSpace(key)
		u[section][key] = append(u[section][key], strings.TrimSpace(value))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read unit: %w", err)
	}
	return u, nil
}

// ParseFile reads the unit file at path.
func ParseFile(path string) (Unit, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	u, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return u, nil
}

// Get returns the last value of key in section, as systemd uses for single-valued
// settings, and whether the key is set at all.
func (u Unit) Get(section, key string) (string, bool) {
	vs := u[section][key]
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// List returns the effective list of a list-valued setting (such as
// RestrictAddressFamilies or CapabilityBoundingSet) after the drop-ins, in order:
// an empty assignment clears what came before, other assignments add their
// space-separated words.
func List(section, key string, units ...Unit) []string {
	var out []string
	for _, u := range units {
		for _, v := range u[section][key] {
			if v == "" {
				out = nil
				continue
			}
			out = append(out, strings.Fields(v)...)
		}
	}
	return out
}
