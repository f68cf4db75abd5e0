package svcpkg

import (
	"strings"
	"unicode"
)

// CompareDebian compares two Debian package versions ([epoch:]upstream[-revision]) as
// dpkg does: -1, 0 or 1.
func CompareDebian(a, b string) int {
	ea, ua, ra := splitDebian(a)
	eb, ub, rb := splitDebian(b)
	if c := compareNum(ea, eb); c != 0 {
		return c
	}
	if c := compareFragment(ua, ub); c != 0 {
		return c
	}
	return compareFragment(ra, rb)
}

// CompareRPM compares two RPM versions ([epoch:]version[-release]). It applies the same
// alternating digit/non-digit rules as Debian, which agree with rpmvercmp for the version
// strings distributions use.
func CompareRPM(a, b string) int { return CompareDebian(a, b) }

func splitDebian(v string) (epoch, upstream, revision string) {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		epoch, v = v[:i], v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		v, revision = v[:i], v[i+1:]
	}
	return epoch, v, revision
}

// compareFragment implements dpkg's verrevcmp.
func compareFragment(a, b string) int {
	for a != "" || b != "" {
		var na, nb string
		na, a = span(a, false)
		nb, b = span(b, false)
		if c := compareLex(na, nb); c != 0 {
			return c
		}
		na, a = span(a, true)
		nb, b = span(b, true)
		if c := compareNum(na, nb); c != 0 {
			return c
		}
	}
	return 0
}

func span(s string, digits bool) (string, string) {
	i := 0
	for i < len(s) && unicode.IsDigit(rune(s[i])) == digits {
		i++
	}
	return s[:i], s[i:]
}

func order(c byte, ok bool) int {
	switch {
	case !ok:
		return 0
	case c == '~':
		return -1
	case unicode.IsLetter(rune(c)):
		return int(c)
	default:
		return int(c) + 256
	}
}

func compareLex(a, b string) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		var ca, cb byte
		if i < len(a) {
			ca = a[i]
		}
		if i < len(b) {
			cb = b[i]
		}
		oa, ob := order(ca, i < len(a)), order(cb, i < len(b))
		if oa != ob {
			if oa < ob {
				return -1
			}
			return 1
		}
	}
	return 0
}

func compareNum(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	switch {
	case len(a) != len(b):
		if len(a) < len(b) {
			return -1
		}
		return 1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
