// Package runbook is the model of Ward's runbooks: YAML documents that say which checks
// they answer, whether they may run without an operator's approval, the steps (actions
// compiled into the agent) that fix the host, the checks that verify the fix and what to
// do when it fails. The controller turns a runbook into a signed command; the agent runs
// each step with the action of the same name.
//
// Schema (every field is checked; unknown fields are refused with file and line):
//
//	id: RB-SSH-001                # RB-<AREA>-<NNN>, unique
//	title: Disable SSH password authentication
//	description: free text for operators
//	answers: [SSH-002]            # baseline check ids the runbook remediates
//	auto_remediate: true          # may run without approval (tier 1 and 2 only)
//	params: [user]                # inputs the controller binds when it issues a command
//	steps:
//	  - action: ensure_key_value  # one of Actions
//	    params: {path: /etc/ssh/sshd_config, key: PasswordAuthentication, value: "no"}
//	    timeout: 30s              # default DefaultStepTimeout, at most MaxStepTimeout
//	verify: [SSH-002]             # checks re-run afterwards; default: answers
//	on_failure: escalate          # escalate (default) or notify
//
// Step parameters may refer to a runbook parameter as ${name}; Bind substitutes them.
package runbook

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Step timeouts.
const (
	DefaultStepTimeout = 60 * time.Second
	MaxStepTimeout     = 30 * time.Minute
)

// What to do when a runbook fails or its verification does not pass.
const (
	OnFailureEscalate = "escalate" // open an escalation (webhook) with everything tried
	OnFailureNotify   = "notify"   // record and notify; the incident stays open
)

// Runbook is one parsed and validated runbook. The zero value is not valid.
type Runbook struct {
	ID            string   `yaml:"id"`
	Title         string   `yaml:"title"`
	Description   string   `yaml:"description"`
	Answers       []string `yaml:"answers"`
	AutoRemediate bool     `yaml:"auto_remediate"`
	Params        []string `yaml:"params"`
	Steps         []Step   `yaml:"steps"`
	Verify        []string `yaml:"verify"`
	OnFailure     string   `yaml:"on_failure"`

	File string `yaml:"-"` // name the document was loaded from
	Line int    `yaml:"-"` // line of the document's first key
}

// Step is one action with its parameters.
type Step struct {
	Action  string            `yaml:"action"`
	Params  map[string]string `yaml:"params"`
	Timeout time.Duration     `yaml:"timeout"`

	Line int `yaml:"-"` // line of the step in its file
}

// VerifyChecks returns the checks to re-run after the steps: Verify, or Answers when
// Verify is empty. The result is a new slice.
func (r *Runbook) VerifyChecks() []string {
	if len(r.Verify) > 0 {
		return append([]string(nil), r.Verify...)
	}
	return append([]string(nil), r.Answers...)
}

var paramRef = regexp.MustCompile(`\$\{([a-z][a-z0-9_]*)\}`)

// Bind returns the runbook's steps with every ${name} in their parameters replaced by
// values[name]. It fails when a declared parameter has no value or a value is empty.
// The runbook is not modified.
func (r *Runbook) Bind(values map[string]string) ([]Step, error) {
	for _, p := range r.Params {
		if values[p] == "" {
			return nil, fmt.Errorf("runbook %s: bind: no value for parameter %q", r.ID, p)
		}
	}

	out := make([]Step, len(r.Steps))
	for i, s := range r.Steps {
		out[i] = Step{Action: s.Action, Timeout: s.Timeout, Line: s.Line,
			Params: make(map[string]string, len(s.Params))}
		for k, v := range s.Params {
			out[i].Params[k] = paramRef.ReplaceAllStringFunc(v, func(m string) string {
				return values[paramRef.FindStringSubmatch(m)[1]]
			})
		}
	}
	return out, nil
}

// Set is runbooks by id. A nil Set holds nothing.
type Set map[string]*Runbook

// Has reports whether the set holds id.
func (s Set) Has(id string) bool { return s[id] != nil }

// IDs returns the ids in the set, sorted.
func (s Set) IDs() []string {
	ids := make([]string, 0, len(s))
	for id := range s {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Answering returns the ids of the runbooks that answer check, sorted.
func (s Set) Answering(check string) []string {
	var ids []string
	for id, r := range s {
		for _, a := range r.Answers {
			if strings.EqualFold(a, check) {
				ids = append(ids, id)
				break
			}
		}
	}
	sort.Strings(ids)
	return ids
}
