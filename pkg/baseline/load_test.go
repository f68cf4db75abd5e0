package baseline

import (
	"errors"
	"strings"
	"testing"
)

const good = `id: test
version: "1"
checks:
  - id: SSH-002
    title: no passwords
    rationale: keys only
    hipaa: ["164.312(d)"]
    severity: high
    platforms: [debian]
    test: {kind: key_value, path: /etc/ssh/sshd_config, syntax: sshd,
           key: PasswordAuthentication, default: "yes", expect: {equals: "no"}}
    runbook: RB-SSH-001
`

func TestParseGood(t *testing.T) {
	b, err := Parse("good.yaml", []byte(good), Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := b.Check("SSH-002")
	if c == nil || c.Line != 4 || c.Test.Line != 10 || c.Test.Expect.Equals != "no" {
		t.Fatalf("check = %+v", c)
	}
}

// Each broken document is refused with the file, the line of the mistake and the reason.
func TestParseRefusesMistakes(t *testing.T) {
	tests := []struct {
		name, old, new string
		line           int
		reason         string
	}{
		{"unknown field", "    severity: high", "    severity: high\n    sevrity: low", 9,
			`unknown field "sevrity"`},
		{"unknown nested field", `expect: {equals: "no"}`, `expect: {equal: "no"}`, 11,
			`unknown field "equal"`},
		{"bad regex", `expect: {equals: "no"}`, `expect: {matches: "(no"}`, 11,
			"bad regular expression"},
		{"unknown runbook", "runbook: RB-SSH-001", "runbook: RB-NOPE-001", 12,
			`unknown runbook "RB-NOPE-001"`},
		{"no runbook", "    runbook: RB-SSH-001\n", "", 4, "needs a runbook"},
		{"unknown kind", "kind: key_value", "kind: key_valu", 10, `unknown test kind`},
		{"field of another kind", `default: "yes",`, `default: "yes", module: x,`, 11,
			`does not use "module"`},
		{"wrong type", `severity: high`, `severity: [high]`, 8, "cannot unmarshal"},
		{"bad citation", `hipaa: ["164.312(d)"]`, `hipaa: ["HIPAA 312"]`, 7, "citation"},
		{"relative path", "path: /etc/ssh/sshd_config", "path: etc/ssh/sshd_config", 10,
			"must be absolute"},
		{"syntax error", "    title: no passwords", "    title: [no", -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(good, tt.old, tt.new, 1)
			if doc == good {
				t.Fatal("test does not change the document")
			}
			_, err := Parse("broken.yaml", []byte(doc), Options{})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			lineOK := e.Line == tt.line || (tt.line < 0 && e.Line > 0)
			if e.File != "broken.yaml" || !lineOK || !strings.Contains(e.Reason, tt.reason) {
				t.Errorf("err = %q, want broken.yaml:%d: ...%s", e, tt.line, tt.reason)
			}
		})
	}
}

func TestParseRefusesDuplicateID(t *testing.T) {
	doc := good + strings.SplitN(good, "checks:\n", 2)[1]
	_, err := Parse("dup.yaml", []byte(doc), Options{})
	if err == nil || !strings.Contains(err.Error(), `dup.yaml:13: duplicate check id "SSH-002" (first on line 4)`) {
		t.Fatalf("err = %v", err)
	}
}

func TestParseRunbooksOption(t *testing.T) {
	_, err := Parse("t.yaml", []byte(good), Options{Runbooks: func(string) bool { return false }})
	if err == nil || !strings.Contains(err.Error(), "unknown runbook") {
		t.Fatalf("err = %v", err)
	}
}
