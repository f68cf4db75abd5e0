package classify

import (
	"bufio"
	_ "embed"
	"fmt"
	"io"
	"os"
	"strings"
)

// NmapMACPrefixesPath is where Debian's nmap package installs its MAC prefix table.
const NmapMACPrefixesPath = "/usr/share/nmap/nmap-mac-prefixes"

//go:embed mac-prefixes-fallback.txt
var fallbackPrefixes string

// Vendors maps MAC prefixes (the first three octets) to vendor names. A nil *Vendors
// knows no vendor. Vendors is immutable after it is built and safe for concurrent use.
type Vendors struct {
	byPrefix map[uint32]string
}

// ParseVendors reads a table in nmap-mac-prefixes format: one "XXXXXX Vendor Name" per
// line, six hexadecimal digits, '#' comments. A malformed line is an error naming it.
func ParseVendors(r io.Reader) (*Vendors, error) {
	v := &Vendors{byPrefix: make(map[uint32]string)}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		hexPart, name, _ := strings.Cut(line, " ")
		prefix, ok := parsePrefix(hexPart)
		if !ok {
			return nil, fmt.Errorf("mac prefixes line %d: %q is not six hex digits", n, hexPart)
		}
		v.byPrefix[prefix] = strings.TrimSpace(name)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mac prefixes: %w", err)
	}
	return v, nil
}

// FallbackVendors returns the small embedded table of clinical and network vendors.
func FallbackVendors() *Vendors {
	v, err := ParseVendors(strings.NewReader(fallbackPrefixes))
	if err != nil {
		panic("classify: embedded mac prefix table: " + err.Error())
	}
	return v
}

// LoadVendors reads the nmap table at path and adds the embedded fallback entries it
// lacks. When path cannot be opened it returns the fallback alone together with the
// error, so a caller may log the degradation and carry on.
func LoadVendors(path string) (*Vendors, error) {
	fallback := FallbackVendors()
	f, err := os.Open(path)
	if err != nil {
		return fallback, fmt.Errorf("open mac prefixes: %w", err)
	}
	defer f.Close()

	v, err := ParseVendors(f)
	if err != nil {
		return fallback, err
	}
	for p, name := range fallback.byPrefix {
		if _, ok := v.byPrefix[p]; !ok {
			v.byPrefix[p] = name
		}
	}
	return v, nil
}

// Len returns the number of prefixes known.
func (v *Vendors) Len() int {
	if v == nil {
		return 0
	}
	return len(v.byPrefix)
}

// Lookup returns the vendor of mac's prefix, and false when the prefix is unknown or mac
// is not a MAC address.
func (v *Vendors) Lookup(mac string) (string, bool) {
	if v == nil {
		return "", false
	}
	prefix, ok := macPrefix(mac)
	if !ok {
		return "", false
	}
	name, ok := v.byPrefix[prefix]
	return name, ok
}

// macPrefix returns the first three octets of mac, accepting colons, dashes, dots or no
// separators.
func macPrefix(mac string) (uint32, bool) {
	var digits [6]byte
	n := 0
	for i := 0; i < len(mac) && n < 6; i++ {
		c := mac[i]
		switch {
		case c == ':' || c == '-' || c == '.':
			continue
		case hexValue(c) < 0:
			return 0, false
		}
		digits[n] = c
		n++
	}
	if n < 6 {
		return 0, false
	}
	return parsePrefix(string(digits[:]))
}

// FormatPrefix returns mac's prefix as "44:4B:5D", or "" when mac is not a MAC address.
func FormatPrefix(mac string) string {
	p, ok := macPrefix(mac)
	if !ok {
		return ""
	}
	const digits = "0123456789ABCDEF"
	var b [8]byte
	for i := 0; i < 3; i++ {
		octet := byte(p >> (16 - 8*i))
		b[3*i], b[3*i+1] = digits[octet>>4], digits[octet&0xf]
		if i < 2 {
			b[3*i+2] = ':'
		}
	}
	return string(b[:8])
}

func parsePrefix(s string) (uint32, bool) {
	if len(s) != 6 {
		return 0, false
	}
	var p uint32
	for i := 0; i < 6; i++ {
		d := hexValue(s[i])
		if d < 0 {
			return 0, false
		}
		p = p<<4 | uint32(d)
	}
	return p, true
}

func hexValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
