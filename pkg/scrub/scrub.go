// Package scrub removes protected health information (PHI) from free text before Ward
// stores or sends it: banners, command output, descriptions, observed values. It uses the
// standard library only, so the agent and the controller share it.
//
// What is replaced, each by a marker "[phi:<kind>:<hash>]" where hash is the first 12 hex
// digits of HMAC-SHA256(salt, kind + ":" + matched text), so equal values stay comparable
// within one salt without being readable:
//
//   - email addresses (kind "email");
//   - social security numbers, 123-45-6789 or 123 45 6789, and nine digits after an
//     "SSN" label (kind "ssn");
//   - telephone numbers in North American forms: (555) 123-4567, 555-123-4567,
//     555.123.4567, +1 555 123 4567 (kind "phone");
//   - medical record, chart, account and patient numbers after a label such as "MRN",
//     "MRN#", "Medical Record Number:", "Chart #", "Patient ID:", "Acct:" (kind "mrn");
//   - dates after a birth label ("DOB", "D.O.B.", "Date of Birth", "Birth Date", "born")
//     in any of the forms 01/02/1980, 1-2-80, 1980-01-02, Jan 2, 1980 (kind "dob"), and
//     slashed dates MM/DD/YYYY anywhere (kind "date");
//   - names after a label "Patient:", "Patient Name:", "Pt:", "Name:", "Guarantor:",
//     "Insured:", "Subscriber:": up to four capitalized words, "Doe, John A." included
//     (kind "name").
//
// Labels stay in place ("MRN: [phi:mrn:...]"), so a reader still sees what was there.
// What survives unchanged: version strings (OpenSSH_9.2p1, 1.2.3-4), serial numbers,
// IPv4 and IPv6 addresses, MAC addresses, ISO timestamps outside a birth label, UUIDs and
// hexadecimal digests. Scrubbing is idempotent: a marker is never matched again.
//
// Known limitation: pattern-based scrubbing cannot recognize a bare name without a label
// or identifiers in formats it does not know; it lowers the risk, it does not remove it.
package scrub

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// Scrubber replaces PHI in text with salted markers. The zero value is not usable; make
// one with New. A Scrubber is safe for concurrent use.
type Scrubber struct {
	salt []byte
}

// New returns a Scrubber whose marker hashes are keyed with salt. The same salt gives the
// same markers for the same values (for correlation across records); keep it secret,
// since an unsalted hash of a nine-digit number is trivially reversed. salt is copied.
// An empty salt is allowed but makes the markers reversible by brute force.
func New(salt []byte) *Scrubber {
	return &Scrubber{salt: append([]byte(nil), salt...)}
}

// processScrubber is used by Text. Its salt is random per process.
var processScrubber = func() *Scrubber {
	salt := make([]byte, 32)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails on supported platforms
	return New(salt)
}()

// Text scrubs s with a salt that is random for each process: markers match within one
// process only. Use New with a stable salt when markers must match across restarts.
func Text(s string) string { return processScrubber.Text(s) }

// rule is one pattern. When group > 0 only that submatch is replaced, which keeps labels
// and the boundary characters Go's regexp cannot look behind for.
type rule struct {
	kind  string
	re    *regexp.Regexp
	group int
	// may reports whether the text's features allow a match at all; the regular
	// expression runs only when it does (most text has nothing a rule needs).
	may func(f features) bool
}

const (
	// nb: not preceded by a character that would make the match part of a longer token
	nb = `(?:^|[^0-9A-Za-z.\-_:/])`
	// na: not followed by such a character
	na = `(?:$|[^0-9A-Za-z\-_/]|\.(?:$|[^0-9]))`

	dateForms = `(?:\d{1,2}[/\-.]\d{1,2}[/\-.]\d{2,4}|\d{4}-\d{1,2}-\d{1,2}|` +
		`(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.? \d{1,2},? \d{4})`
	nameWord = `[A-Z][A-Za-z'\-]*\b\.?`
)

var rules = []rule{
	{"email", regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`), 0,
		func(f features) bool { return f.at }},
	{"dob", regexp.MustCompile(
		`(?i:\b(?:dob|d\.o\.b\.?|date of birth|birth ?date|born(?: on)?))\s*[:#=\-]?\s*(` +
			dateForms + `)`), 1,
		func(f features) bool { return f.digits >= 4 && f.label("dob", "d.o.b", "birth", "born") }},
	{"ssn", regexp.MustCompile(`(?i:\bssn|social security(?: number| no\.?)?)\s*[:#=]?\s*` +
		`(\d{3}[- ]?\d{2}[- ]?\d{4})\b`), 1,
		func(f features) bool { return f.digits >= 9 && f.label("ssn", "social security") }},
	{"ssn", regexp.MustCompile(nb + `(\d{3}[- ]\d{2}[- ]\d{4})` + na), 1,
		func(f features) bool { return f.digits >= 9 }},
	{"mrn", regexp.MustCompile(`(?i:\b(?:mrn|medical record(?: number| no\.?| #)?|` +
		`record (?:number|no\.?|#)|chart(?: number| no\.?| #)?|patient (?:id|number|no\.?|#)` +
		`|acct|account(?: number| no\.?| #)?))\s*[:#=]?\s*#?\s*([A-Za-z]{0,3}\d[\d\-]{3,})`), 1,
		func(f features) bool {
			return f.digits >= 1 && f.label("mrn", "record", "chart", "patient", "acct", "account")
		}},
	{"phone", regexp.MustCompile(nb + `((?:\+?1[ .\-]?)?(?:\(\d{3}\) ?|\d{3}[ .\-])` +
		`\d{3}[ .\-]\d{4})` + na), 1,
		func(f features) bool { return f.digits >= 10 }},
	{"date", regexp.MustCompile(nb + `(\d{1,2}/\d{1,2}/\d{4})` + na), 1,
		func(f features) bool { return f.slash && f.digits >= 6 }},
	{"name", regexp.MustCompile(`(?i:\b(?:patient(?: name)?|pt|name|guarantor|insured|` +
		`subscriber))\s*[:=]\s*(` + nameWord + `(?:,? ` + nameWord + `){0,3})`), 1,
		func(f features) bool {
			return f.assign && f.label("patient", "pt", "name", "guarantor", "insured",
				"subscriber")
		}},
}

// features are what the rules' prefilters look at, found in one pass over the text.
// Every feature is a necessary condition of some rule's match, counted on the whole text,
// so a rule whose condition fails cannot match (also not after other rules replaced
// parts of the text: that only removes characters).
type features struct {
	text     string
	digits   int  // ASCII digits (\d matches only these)
	at       bool // '@'
	slash    bool // '/'
	assign   bool // ':' or '='
	nonASCII bool // case-insensitive matching folds some non-ASCII letters to ASCII ones
}

func featuresOf(s string) features {
	f := features{text: s}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			f.digits++
		case c == '@':
			f.at = true
		case c == '/':
			f.slash = true
		case c == ':' || c == '=':
			f.assign = true
		case c >= 0x80:
			f.nonASCII = true
		}
	}
	return f
}

// label reports whether the text may hold one of the labels, ignoring ASCII case. Text
// with non-ASCII bytes always may: (?i) matches the Kelvin sign for k and the long s for
// s, which a byte comparison would miss.
func (f features) label(labels ...string) bool {
	if f.nonASCII {
		return true
	}
	for _, l := range labels {
		if containsFoldASCII(f.text, l) {
			return true
		}
	}
	return false
}

// containsFoldASCII reports whether s holds sub, ignoring ASCII case; sub is lowercase.
func containsFoldASCII(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		j := 0
		for ; j < len(sub); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != sub[j] {
				break
			}
		}
		if j == len(sub) {
			return true
		}
	}
	return false
}

// markerRE finds markers already in the text, which no rule may touch again.
var markerRE = regexp.MustCompile(`\[phi:[a-z]+:[0-9a-f]{12}\]`)

// Text returns s with every PHI pattern the package documents replaced by a marker.
func (sc *Scrubber) Text(s string) string { return sc.text(s, true) }

// text is Text; prefilter false runs every rule's expression (the tests compare both).
func (sc *Scrubber) text(s string, prefilter bool) string {
	if s == "" {
		return s
	}
	f := featuresOf(s)
	for _, r := range rules {
		if prefilter && !r.may(f) {
			continue
		}
		// a match may consume the boundary character the next one needs: go again
		// until nothing changes (markers are never matched, so this ends)
		for {
			next := sc.apply(r, s)
			if next == s {
				break
			}
			s = next
		}
	}
	return s
}

// apply replaces r's matches in s, skipping matches that overlap an existing marker.
func (sc *Scrubber) apply(r rule, s string) string {
	matches := r.re.FindAllStringSubmatchIndex(s, -1)
	if matches == nil {
		return s
	}
	markers := markerRE.FindAllStringIndex(s, -1)

	var b strings.Builder
	last := 0
	for _, m := range matches {
		start, end := m[2*r.group], m[2*r.group+1]
		if start < 0 || overlaps(markers, start, end) {
			continue
		}
		b.WriteString(s[last:start])
		b.WriteString(sc.marker(r.kind, s[start:end]))
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}

func overlaps(spans [][]int, start, end int) bool {
	for _, sp := range spans {
		if start < sp[1] && sp[0] < end {
			return true
		}
	}
	return false
}

// marker returns the replacement for value of the given kind.
func (sc *Scrubber) marker(kind, value string) string {
	mac := hmac.New(sha256.New, sc.salt)
	mac.Write([]byte(kind + ":" + value))
	return "[phi:" + kind + ":" + hex.EncodeToString(mac.Sum(nil))[:12] + "]"
}
