package runbook

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"

	"go.yaml.in/yaml/v3"

	"github.com/wardsec/ward/pkg/internal/strictyaml"
)

// Error is one problem in a runbook document, formatted "file:line: reason". Parse returns
// its problems joined with errors.Join; errors.As finds the first.
type Error = strictyaml.Error

var (
	idRE    = regexp.MustCompile(`^RB-[A-Z0-9]+-[0-9]{3}$`)
	paramRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// Parse parses and validates one runbook document. file names the document in errors.
// Defaults are filled in: step timeouts (DefaultStepTimeout) and on_failure (escalate).
func Parse(file string, data []byte) (*Runbook, error) {
	root, err := strictyaml.Parse(file, data)
	if err != nil {
		return nil, err
	}
	var r Runbook
	if err := strictyaml.Decode(file, root, &r); err != nil {
		return nil, err
	}
	r.File, r.Line = file, root.Line
	stepLines(root, &r)

	if err := r.validate(root); err != nil {
		return nil, err
	}
	return &r, nil
}

// stepLines records the line of each step from the document.
func stepLines(root *yaml.Node, r *Runbook) {
	seq := valueOf(root, "steps")
	if seq == nil {
		return
	}
	for i, n := range seq.Content {
		if i < len(r.Steps) {
			r.Steps[i].Line = n.Line
		}
	}
}

// valueOf returns the value node of key in mapping n, or nil.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// lineOf returns the line of key in mapping n, or n's own line.
func lineOf(n *yaml.Node, key string) int {
	if v := valueOf(n, key); v != nil {
		return v.Line
	}
	return n.Line
}

// validate checks r's content and fills in defaults.
func (r *Runbook) validate(root *yaml.Node) error {
	var errs []error
	bad := func(line int, format string, args ...any) {
		errs = append(errs, strictyaml.Errorf(r.File, line, format, args...))
	}

	if !idRE.MatchString(r.ID) {
		bad(lineOf(root, "id"), "id %q is not of the form RB-AREA-NNN", r.ID)
	}
	if r.Title == "" {
		bad(root.Line, "title is required")
	}
	switch r.OnFailure {
	case "":
		r.OnFailure = OnFailureEscalate
	case OnFailureEscalate, OnFailureNotify:
	default:
		bad(lineOf(root, "on_failure"), "on_failure %q is not escalate or notify", r.OnFailure)
	}
	for _, p := range r.Params {
		if !paramRE.MatchString(p) {
			bad(lineOf(root, "params"), "parameter name %q is not lower_snake_case", p)
		}
	}
	if len(r.Steps) == 0 {
		bad(root.Line, "a runbook needs at least one step")
	}
	for i := range r.Steps {
		for _, e := range r.validateStep(&r.Steps[i]) {
			bad(r.Steps[i].Line, "step %d: %s", i+1, e)
		}
	}
	return errors.Join(errs...)
}

// validateStep checks one step against Actions and the declared parameters.
func (r *Runbook) validateStep(s *Step) []string {
	spec, ok := Actions[s.Action]
	if !ok {
		return []string{fmt.Sprintf("unknown action %q", s.Action)}
	}

	var probs []string
	for _, p := range spec.Required {
		if s.Params[p] == "" {
			probs = append(probs, fmt.Sprintf("action %s needs parameter %q", s.Action, p))
		}
	}
	keys := make([]string, 0, len(s.Params))
	for k := range s.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(spec.Required, k) && !slices.Contains(spec.Optional, k) {
			probs = append(probs, fmt.Sprintf("action %s has no parameter %q", s.Action, k))
		}
		for _, m := range paramRef.FindAllStringSubmatch(s.Params[k], -1) {
			if !slices.Contains(r.Params, m[1]) {
				probs = append(probs, fmt.Sprintf("parameter ${%s} is not declared", m[1]))
			}
		}
	}

	switch {
	case s.Timeout < 0 || s.Timeout > MaxStepTimeout:
		probs = append(probs, fmt.Sprintf("timeout %s is not between 0 and %s",
			s.Timeout, MaxStepTimeout))
	case s.Timeout == 0:
		s.Timeout = DefaultStepTimeout
	}
	return probs
}

//go:embed shipped/*.yaml
var shipped embed.FS

// Shipped parses the runbooks that ship with Ward (shipped/RB-*.yaml, embedded). Every
// call returns a fresh Set the caller may modify.
func Shipped() (Set, error) {
	sub, err := fs.Sub(shipped, "shipped")
	if err != nil {
		return nil, fmt.Errorf("runbook: shipped: %w", err)
	}
	return LoadFS(sub)
}

// ShippedFS returns the shipped runbook documents, for tools that show or copy them.
func ShippedFS() fs.FS {
	sub, _ := fs.Sub(shipped, "shipped")
	return sub
}

// LoadFS parses every *.yaml file at the top of fsys. It fails on the first document with
// problems, or when two documents share an id.
func LoadFS(fsys fs.FS) (Set, error) {
	names, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, fmt.Errorf("runbook: list: %w", err)
	}

	set := make(Set, len(names))
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("runbook: read %s: %w", name, err)
		}
		r, err := Parse(path.Base(name), data)
		if err != nil {
			return nil, err
		}
		if prev := set[r.ID]; prev != nil {
			return nil, strictyaml.Errorf(r.File, r.Line, "duplicate runbook id %q (also in %s)",
				r.ID, prev.File)
		}
		set[r.ID] = r
	}
	return set, nil
}
