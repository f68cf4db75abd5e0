package scrub

import (
	"regexp"
	"strings"
	"testing"
)

var markerOf = regexp.MustCompile(`\[phi:([a-z]+):[0-9a-f]{12}\]`)

func TestTextRemovesPHI(t *testing.T) {
	sc := New([]byte("test salt"))
	tests := []struct {
		name  string
		in    string
		gone  []string // substrings that must not survive
		kinds []string // marker kinds expected, in order
		keep  []string // substrings that must survive
	}{
		{"ssn dashed", "SSN 123-45-6789 on file", []string{"123-45-6789"}, []string{"ssn"},
			[]string{"SSN ", " on file"}},
		{"ssn labeled bare", "ssn: 123456789", []string{"123456789"}, []string{"ssn"}, nil},
		{"ssn unlabeled", "id 078-05-1120.", []string{"078-05-1120"}, []string{"ssn"}, nil},
		{"ssn spaced", "card 078 05 1120", []string{"078 05 1120"}, []string{"ssn"}, nil},
		{"email", "contact jane.doe+x@clinic-example.org now", []string{"jane.doe"},
			[]string{"email"}, []string{"contact ", " now"}},
		{"phone parens", "call (555) 123-4567", []string{"123-4567"}, []string{"phone"}, nil},
		{"phone dashes", "tel 555-123-4567, fax 555.987.6543",
			[]string{"555-123-4567", "555.987.6543"}, []string{"phone", "phone"}, nil},
		{"phone intl", "+1 555 123 4567", []string{"123 4567"}, []string{"phone"}, nil},
		{"phones adjacent", "555-123-4567 555-123-4568",
			[]string{"4567", "4568"}, []string{"phone", "phone"}, nil},
		{"mrn", "MRN: 00123456 admitted", []string{"00123456"}, []string{"mrn"},
			[]string{"MRN: ", " admitted"}},
		{"mrn hash", "MRN#A1234567", []string{"A1234567"}, []string{"mrn"}, nil},
		{"medical record", "Medical Record Number: 555-0001", []string{"555-0001"},
			[]string{"mrn"}, nil},
		{"chart", "Chart # 99812", []string{"99812"}, []string{"mrn"}, nil},
		{"patient id", "Patient ID: 4432190", []string{"4432190"}, []string{"mrn"}, nil},
		{"dob slashed", "DOB: 01/02/1980", []string{"1980"}, []string{"dob"}, nil},
		{"dob iso", "Date of Birth: 1980-01-02", []string{"1980-01-02"}, []string{"dob"}, nil},
		{"dob words", "born Jan 2, 1980 in", []string{"1980"}, []string{"dob"}, nil},
		{"dob short", "D.O.B. 1-2-80", []string{"1-2-80"}, []string{"dob"}, nil},
		{"date slashed", "visit 03/14/2021 ok", []string{"03/14/2021"}, []string{"date"}, nil},
		{"patient name", "Patient: John Smith, seen", []string{"John", "Smith"},
			[]string{"name"}, []string{"Patient: ", ", seen"}},
		{"patient last first", "Patient Name: DOE, JANE A. (room 4)", []string{"DOE", "JANE"},
			[]string{"name"}, []string{"(room 4)"}},
		{"pt", "pt: Mary O'Brien-Smith", []string{"Mary", "O'Brien"}, []string{"name"}, nil},
		{"many", "Patient: Ann Lee DOB 02/03/1990 MRN 1234567 ann@x.io 555-222-3333",
			[]string{"Ann", "1990", "1234567", "ann@x.io", "222-3333"},
			[]string{"email", "dob", "mrn", "phone", "name"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sc.Text(tt.in)
			for _, g := range tt.gone {
				if strings.Contains(got, g) {
					t.Errorf("Text(%q) = %q, still contains %q", tt.in, got, g)
				}
			}
			for _, k := range tt.keep {
				if !strings.Contains(got, k) {
					t.Errorf("Text(%q) = %q, lost %q", tt.in, got, k)
				}
			}
			var kinds []string
			for _, m := range markerOf.FindAllStringSubmatch(got, -1) {
				kinds = append(kinds, m[1])
			}
			if strings.Join(sorted(kinds), ",") != strings.Join(sorted(tt.kinds), ",") {
				t.Errorf("Text(%q) = %q, marker kinds %v, want %v", tt.in, got, kinds, tt.kinds)
			}
			if again := sc.Text(got); again != got {
				t.Errorf("not idempotent: %q then %q", got, again)
			}
		})
	}
}

func TestTextKeepsTechnicalValues(t *testing.T) {
	sc := New([]byte("test salt"))
	keep := []string{
		"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
		"nginx/1.22.1",
		"version 10.0.19045.3803",
		"kernel 6.1.0-18-amd64",
		"package openssl 3.0.11-1~deb12u2",
		"Serial Number: SN-4C1234567890",
		"serial 5CG1234XYZ",
		"IP 192.168.100.200 gw 10.0.0.1 mask 255.255.255.0",
		"addr 172.16.254.1:104",
		"fe80::1ff:fe23:4567:890a",
		"2001:db8::ff00:42:8329",
		"MAC 00:1A:2B:3C:4D:5E",
		"mac 00-1a-2b-3c-4d-5e",
		"time 2026-12-03T19:22:05Z",
		"uuid 123e4567-e89b-12d3-a456-426614174000",
		"sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		"port 11112/tcp DICOM",
		"Name: nginx",
		"Hostname: DC01",
		"Server Name: DC01.clinic.local",
		"Windows Server 2019 Build 17763",
		"build 1234-5678-9012",
		"",
	}
	for _, s := range keep {
		if got := sc.Text(s); got != s {
			t.Errorf("Text(%q) = %q, want it unchanged", s, got)
		}
	}
}

func TestMarkersSaltedAndStable(t *testing.T) {
	a, b := New([]byte("a")), New([]byte("b"))
	in := "SSN 123-45-6789"
	if a.Text(in) != a.Text(in) {
		t.Error("same salt gave different markers")
	}
	if a.Text(in) == b.Text(in) {
		t.Error("different salts gave the same marker")
	}
	if Text(in) == in || strings.Contains(Text(in), "6789") {
		t.Errorf("package Text(%q) = %q", in, Text(in))
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
