package unitfile

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	u, err := Parse(strings.NewReader(`# comment
[Unit]
Description=Ward agent
ConditionPathExists=|/a
ConditionPathExists=|/b

[Service]
ExecStart=/usr/bin/x run \
	--flag value
CapabilityBoundingSet=
; also a comment
RestrictAddressFamilies=AF_INET AF_UNIX
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := u.Get("Unit", "Description"); got != "Ward agent" {
		t.Errorf("Description = %q", got)
	}
	if got := u["Unit"]["ConditionPathExists"]; !slices.Equal(got, []string{"|/a", "|/b"}) {
		t.Errorf("ConditionPathExists = %q", got)
	}
	if got, _ := u.Get("Service", "ExecStart"); got != "/usr/bin/x run  --flag value" {
		t.Errorf("ExecStart = %q", got)
	}
	if got, ok := u.Get("Service", "CapabilityBoundingSet"); !ok || got != "" {
		t.Errorf("CapabilityBoundingSet = %q, %v; want an empty assignment", got, ok)
	}

	dropIn, err := Parse(strings.NewReader("[Service]\nRestrictAddressFamilies=AF_PACKET\n" +
		"CapabilityBoundingSet=CAP_NET_RAW\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := List("Service", "RestrictAddressFamilies", u, dropIn); !slices.Equal(got,
		[]string{"AF_INET", "AF_UNIX", "AF_PACKET"}) {
		t.Errorf("merged RestrictAddressFamilies = %q", got)
	}
	if got := List("Service", "CapabilityBoundingSet", u); len(got) != 0 {
		t.Errorf("CapabilityBoundingSet = %q, want empty", got)
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	for _, in := range []string{"Key=outside a section\n", "[Service]\nno equals sign\n"} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("Parse(%q) accepted it", in)
		}
	}
}
