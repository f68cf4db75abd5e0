package runbook

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestShipped(t *testing.T) {
	set, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	if len(set) < 10 {
		t.Fatalf("%d runbooks, want at least 10", len(set))
	}
	r := set["RB-SSH-001"]
	if r == nil || !r.AutoRemediate || r.Steps[0].Timeout != 30*time.Second ||
		r.OnFailure != OnFailureEscalate {
		t.Fatalf("RB-SSH-001 = %+v", r)
	}
	if got := set.Answering("SSH-002"); len(got) != 1 || got[0] != "RB-SSH-001" {
		t.Errorf("Answering(SSH-002) = %v", got)
	}
	if v := set["RB-SSH-004"].VerifyChecks(); len(v) != 4 {
		t.Errorf("VerifyChecks = %v", v)
	}
}

func TestBind(t *testing.T) {
	set, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	r := set["RB-ACCT-001"]
	if _, err := r.Bind(nil); err == nil {
		t.Error("Bind without the user parameter succeeded")
	}
	steps, err := r.Bind(map[string]string{"user": "frontdesk"})
	if err != nil {
		t.Fatal(err)
	}
	if steps[0].Params["user"] != "frontdesk" || r.Steps[0].Params["user"] != "${user}" {
		t.Errorf("bound %v, original %v", steps[0].Params, r.Steps[0].Params)
	}
}

const good = `id: RB-TEST-001
title: test
answers: [X-001]
params: [user]
steps:
  - action: lock_account
    params: {user: "${user}"}
`

func TestParseRefusesMistakes(t *testing.T) {
	tests := []struct {
		name, old, new string
		line           int
		reason         string
	}{
		{"unknown field", "title: test", "title: test\ntitel: x", 3, `unknown field "titel"`},
		{"unknown action", "action: lock_account", "action: rm_rf", 6, `unknown action "rm_rf"`},
		{"missing param", `{user: "${user}"}`, `{}`, 6, `needs parameter "user"`},
		{"extra param", `{user: "${user}"}`, `{user: x, home: y}`, 6, `no parameter "home"`},
		{"undeclared ref", "params: [user]\n", "", 5, "${user} is not declared"},
		{"bad id", "RB-TEST-001", "rb-test-1", 1, "not of the form"},
		{"timeout", `{user: "${user}"}`, "{user: x}\n    timeout: 2h", 6, "timeout 2h0m0s"},
		{"on_failure", "title: test", "title: test\non_failure: panic", 3, "on_failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(good, tt.old, tt.new, 1)
			_, err := Parse("rb.yaml", []byte(doc))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Line != tt.line || !strings.Contains(e.Reason, tt.reason) {
				t.Errorf("err = %q, want rb.yaml:%d: ...%s", e, tt.line, tt.reason)
			}
		})
	}
}
