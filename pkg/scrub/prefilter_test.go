package scrub

import (
	"strings"
	"testing"
)

// prefilterCorpus holds text with PHI, text without, and text built to sit at the edge
// of a prefilter's condition (just enough digits, labels in other cases, non-ASCII
// letters that case folding maps to ASCII ones).
var prefilterCorpus = []string{
	"SSN 123-45-6789 on file", "ssn: 123456789", "id 078-05-1120.", "card 078 05 1120",
	"contact jane.doe+x@clinic-example.org now", "call (555) 123-4567",
	"tel 555-123-4567, fax 555.987.6543", "+1 555 123 4567", "MRN: 00123456 admitted",
	"MRN#A1234567", "Medical Record Number: 555-0001", "Chart # 99812",
	"Patient ID: 4432190", "ACCT 1234", "DOB: 01/02/1980", "Date of Birth: 1980-01-02",
	"born Jan 2, 1980 in", "D.O.B. 1-2-80", "visit 03/14/2021 ok", "Patient: John Smith",
	"Patient Name: DOE, JANE A. (room 4)", "pt: Mary O'Brien-Smith", "PT=Ann Lee",
	"Guarantor: Bob Ray", "SUBSCRIBER: Al Roe", "insured= Kim Park",
	"Social \u017fecurity 123-45-6789", "\u212a name: Ann Lee", "MRN: 1-2-3",
	"service restarted; 3 files changed", "cmd-0001", "nginx/1.22.1", "Name: nginx",
	"1/2/2024", "12/31/1999", "a@b", "x@y.zz", "555 1234", "5551234567",
	"Patient Name: \u00e9mile Zola", "birthdate 1/2/80", "account no. 55-1",
}

// TestPrefilterChangesNothing runs every rule on every text and compares with the
// prefiltered scrub: the prefilter may only skip rules that cannot match.
func TestPrefilterChangesNothing(t *testing.T) {
	sc := New([]byte("test salt"))
	for _, s := range prefilterCorpus {
		for _, in := range []string{s, strings.ToUpper(s), strings.ToLower(s), "x " + s + " y"} {
			if got, want := sc.text(in, true), sc.text(in, false); got != want {
				t.Errorf("prefiltered Text(%q) = %q, every rule gives %q", in, got, want)
			}
		}
	}
}

// TestPrefilterSkipsPlainText checks that the prefilter does skip text that cannot hold
// PHI (what makes the evidence log's appends cheap).
func TestPrefilterSkipsPlainText(t *testing.T) {
	for _, s := range []string{"service restarted; 3 files changed", "cmd-0001",
		"nginx/1.22.1", "OpenSSH_9.2p1"} {
		f := featuresOf(s)
		for _, r := range rules {
			if r.may(f) {
				t.Errorf("rule %s runs on %q", r.kind, s)
			}
		}
	}
}

// FuzzPrefilter compares the prefiltered scrub with every rule on arbitrary text.
func FuzzPrefilter(f *testing.F) {
	for _, s := range prefilterCorpus {
		f.Add(s)
	}
	sc := New([]byte("fuzz salt"))
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := sc.text(s, true), sc.text(s, false); got != want {
			t.Errorf("prefiltered Text(%q) = %q, every rule gives %q", s, got, want)
		}
	})
}
