package baseline

import (
	"embed"
	"errors"
	"fmt"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wardsec/ward/pkg/internal/strictyaml"
	"github.com/wardsec/ward/pkg/runbook"
)

// Error is one problem in a baseline document, formatted "file:line: reason". Parse
// returns its problems joined with errors.Join; errors.As finds the first.
type Error = strictyaml.Error

// Options tunes Parse.
type Options struct {
	// Runbooks reports whether a runbook id exists. Nil means the shipped runbooks.
	Runbooks func(id string) bool
}

var (
	baselineIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)
	checkIDRE    = regexp.MustCompile(`^[A-Z][A-Z0-9]*-[0-9]{3}$`)
	citationRE   = regexp.MustCompile(`^164\.[0-9]{3}(\([a-zA-Z0-9]+\))*$`)
)

// Parse parses and validates a baseline document. file names the document in errors. A
// document with any mistake (unknown field, wrong type, bad regular expression, unknown
// runbook, duplicate id, missing or misplaced field) is refused as a whole: the caller
// keeps whatever baseline it had.
func Parse(file string, data []byte, opts Options) (*Baseline, error) {
	root, err := strictyaml.Parse(file, data)
	if err != nil {
		return nil, err
	}
	var b Baseline
	if err := strictyaml.Decode(file, root, &b); err != nil {
		return nil, err
	}
	b.File = file

	known := opts.Runbooks
	if known == nil {
		set, err := runbook.Shipped()
		if err != nil {
			return nil, err
		}
		known = set.Has
	}

	v := validator{file: file, known: known}
	v.baseline(root, &b)
	if err := errors.Join(v.errs...); err != nil {
		return nil, err
	}
	return &b, nil
}

//go:embed hipaa-v1.yaml
var shipped embed.FS

// ShippedName is the file name of the baseline that ships with Ward.
const ShippedName = "hipaa-v1.yaml"

// ShippedDocument returns the hipaa-v1 document as shipped.
func ShippedDocument() []byte {
	data, _ := shipped.ReadFile(ShippedName)
	return data
}

// Shipped parses the hipaa-v1 baseline embedded in this package, checking runbooks
// against the shipped runbooks. Each call returns a new value.
func Shipped() (*Baseline, error) {
	return Parse(ShippedName, ShippedDocument(), Options{})
}

// validator collects the problems of one document.
type validator struct {
	file  string
	known func(string) bool
	errs  []error
}

func (v *validator) bad(line int, format string, args ...any) {
	v.errs = append(v.errs, strictyaml.Errorf(v.file, line, format, args...))
}

func (v *validator) baseline(root *yaml.Node, b *Baseline) {
	if !baselineIDRE.MatchString(b.ID) {
		v.bad(lineOf(root, "id"), "id %q must be lower-case letters, digits, dots, dashes", b.ID)
	}
	if b.Version == "" {
		v.bad(root.Line, "version is required")
	}
	if len(b.Checks) == 0 {
		v.bad(root.Line, "a baseline needs at least one check")
	}

	checks := items(valueOf(root, "checks"))
	seen := make(map[string]int)
	for i := range b.Checks {
		c, n := &b.Checks[i], checks[i]
		c.Line = n.Line
		if first, dup := seen[c.ID]; dup {
			v.bad(lineOf(n, "id"), "duplicate check id %q (first on line %d)", c.ID, first)
		}
		seen[c.ID] = c.Line
		v.check(n, c)
	}

	v.files(items(valueOf(root, "files")), b.Files)
	for i, n := range items(valueOf(root, "exceptions")) {
		e := &b.Exceptions[i]
		e.Line = n.Line
		if _, ok := seen[e.Check]; !ok {
			v.bad(lineOf(n, "check"), "exception for unknown check %q", e.Check)
		}
		if strings.TrimSpace(e.Reason) == "" {
			v.bad(n.Line, "exception for %s needs a reason", e.Check)
		}
	}
}

func (v *validator) files(nodes []*yaml.Node, files []ManagedFile) {
	seen := make(map[string]bool)
	for i, n := range nodes {
		f := &files[i]
		f.Line = n.Line
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path {
			v.bad(lineOf(n, "path"), "managed file path %q must be absolute and clean", f.Path)
		}
		if seen[f.Path] {
			v.bad(lineOf(n, "path"), "duplicate managed file %q", f.Path)
		}
		seen[f.Path] = true
		if _, err := ParseMode(f.Mode); err != nil {
			v.bad(lineOf(n, "mode"), "%v", err)
		}
		if f.Owner == "" {
			f.Owner = "root"
		}
		if f.Group == "" {
			f.Group = "root"
		}
	}
}

func (v *validator) check(n *yaml.Node, c *Check) {
	if !checkIDRE.MatchString(c.ID) {
		v.bad(lineOf(n, "id"), "check id %q is not of the form AREA-NNN", c.ID)
	}
	if c.Title == "" || c.Rationale == "" {
		v.bad(n.Line, "check %s needs a title and a rationale", c.ID)
	}
	if len(c.Citations) == 0 {
		v.bad(n.Line, "check %s needs at least one HIPAA citation", c.ID)
	}
	for _, cit := range c.Citations {
		if !citationRE.MatchString(cit) {
			v.bad(lineOf(n, "hipaa"), "citation %q is not like 164.312(b)", cit)
		}
	}
	switch c.Severity {
	case SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical:
	default:
		v.bad(lineOf(n, "severity"), "severity %q is not low, medium, high or critical",
			c.Severity)
	}
	if len(c.Platforms) == 0 {
		v.bad(n.Line, "check %s needs at least one platform", c.ID)
	}
	for _, p := range c.Platforms {
		if p != PlatformDebian && p != PlatformRHEL && p != PlatformNixOS {
			v.bad(lineOf(n, "platforms"), "platform %q is not debian, rhel or nixos", p)
		}
	}
	switch {
	case c.Runbook == "":
		v.bad(n.Line, "check %s needs a runbook (or runbook: none)", c.ID)
	case c.Runbook != RunbookNone && !v.known(c.Runbook):
		v.bad(lineOf(n, "runbook"), "unknown runbook %q", c.Runbook)
	}

	tn := valueOf(n, "test")
	if tn == nil {
		v.bad(n.Line, "check %s needs a test", c.ID)
		return
	}
	v.test(tn, &c.Test)
}

// kindFields lists, per kind, the fields a test must set and the ones it may set.
var kindFields = map[string]struct{ req, opt []string }{
	KindFileExists:       {req: []string{"path"}},
	KindFileAbsent:       {req: []string{"path"}},
	KindFileMode:         {req: []string{"path", "mode"}, opt: []string{"owner", "group"}},
	KindRegexMatch:       {req: []string{"path", "pattern"}, opt: []string{"include"}},
	KindRegexNoMatch:     {req: []string{"path", "pattern"}, opt: []string{"include"}},
	KindKeyValue:         {req: []string{"path", "key", "syntax", "expect"}, opt: []string{"default"}},
	KindSysctl:           {req: []string{"key", "expect"}},
	KindModuleLoaded:     {req: []string{"module"}},
	KindModuleDisabled:   {req: []string{"module"}},
	KindMountOptions:     {req: []string{"mount", "options"}},
	KindServiceActive:    {req: []string{"service"}},
	KindServiceEnabled:   {req: []string{"service"}},
	KindServiceInactive:  {req: []string{"service"}},
	KindPackageInstalled: {req: []string{"package"}, opt: []string{"min_version"}},
	KindPackageAbsent:    {req: []string{"package"}},
	KindListening:        {req: []string{"protocol", "ports"}},
	KindNotListening:     {req: []string{"protocol", "ports"}},
	KindUsers:            {req: []string{"rule"}, opt: []string{"names"}},
	KindCommand:          {req: []string{"command"}, opt: []string{"pattern", "expect"}},
	KindAny:              {req: []string{"any"}},
	KindAll:              {req: []string{"all"}},
}

func (v *validator) test(n *yaml.Node, t *Test) {
	t.Line = n.Line
	spec, ok := kindFields[t.Kind]
	if !ok {
		v.bad(lineOf(n, "kind"), "unknown test kind %q", t.Kind)
		return
	}
	set := setFields(t)
	for _, f := range spec.req {
		if !slices.Contains(set, f) {
			v.bad(n.Line, "test kind %s needs %q", t.Kind, f)
		}
	}
	for _, f := range set {
		if f != "kind" && !slices.Contains(spec.req, f) && !slices.Contains(spec.opt, f) {
			v.bad(lineOf(n, f), "test kind %s does not use %q", t.Kind, f)
		}
	}
	v.values(n, t)

	for i, sub := range items(valueOf(n, "any")) {
		v.test(sub, &t.Any[i])
	}
	for i, sub := range items(valueOf(n, "all")) {
		v.test(sub, &t.All[i])
	}
}

// values checks the content of a test's fields.
func (v *validator) values(n *yaml.Node, t *Test) {
	if t.Path != "" && (!path.IsAbs(t.Path) || path.Clean(t.Path) != t.Path) {
		v.bad(lineOf(n, "path"), "path %q must be absolute and clean", t.Path)
	}
	if t.Pattern != "" {
		v.regex(lineOf(n, "pattern"), t.Pattern)
	}
	en := valueOf(n, "expect")
	if t.Expect.Matches != "" {
		v.regex(lineOf(en, "matches"), t.Expect.Matches)
	}
	if t.Expect.NotMatches != "" {
		v.regex(lineOf(en, "not_matches"), t.Expect.NotMatches)
	}
	if t.Mode != "" {
		if _, err := ParseMode(t.Mode); err != nil {
			v.bad(lineOf(n, "mode"), "%v", err)
		}
	}
	if t.Include != "" && t.Include != SyntaxSSHD {
		v.bad(lineOf(n, "include"), "include %q is not sshd", t.Include)
	}
	if t.Syntax != "" && t.Syntax != SyntaxSSHD && t.Syntax != SyntaxSpace &&
		t.Syntax != SyntaxEquals {
		v.bad(lineOf(n, "syntax"), "syntax %q is not sshd, space or equals", t.Syntax)
	}
	if t.Protocol != "" && t.Protocol != "tcp" && t.Protocol != "udp" {
		v.bad(lineOf(n, "protocol"), "protocol %q is not tcp or udp", t.Protocol)
	}
	for _, p := range t.Ports {
		if p < 1 || p > 65535 {
			v.bad(lineOf(n, "ports"), "port %d is out of range", p)
		}
	}
	v.rule(n, t)
	if t.Command != "" {
		if _, ok := Commands[t.Command]; !ok {
			v.bad(lineOf(n, "command"), "command %q is not in the agent's allowlist", t.Command)
		}
		if t.Pattern == "" && t.Expect.IsZero() {
			v.bad(n.Line, "test kind command needs a pattern or an expect")
		}
	}
}

func (v *validator) rule(n *yaml.Node, t *Test) {
	switch t.Rule {
	case "", RuleEmptyPassword, RuleOnlyRootUID0, RuleUniqueUIDs, RuleUniqueNames:
	case RuleNoSharedLogins:
		if len(t.Names) == 0 {
			v.bad(lineOf(n, "rule"), "rule %s needs names", t.Rule)
		}
	default:
		v.bad(lineOf(n, "rule"), "unknown users rule %q", t.Rule)
	}
}

func (v *validator) regex(line int, expr string) {
	if _, err := regexp.Compile(expr); err != nil {
		v.bad(line, "bad regular expression %q: %v", expr, err)
	}
}

// ParseMode parses an octal file mode such as "0640".
func ParseMode(s string) (uint32, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 || s == "" {
		return 0, fmt.Errorf("mode %q is not an octal mode like 0640", s)
	}
	return uint32(m), nil
}

// setFields returns the yaml names of t's fields that are set.
func setFields(t *Test) []string {
	var out []string
	rv, rt := reflect.ValueOf(*t), reflect.TypeOf(*t)
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ",")
		if name == "-" || name == "" {
			continue
		}
		if name == "expect" {
			if !t.Expect.IsZero() {
				out = append(out, name)
			}
			continue
		}
		if !rv.Field(i).IsZero() {
			out = append(out, name)
		}
	}
	return out
}

// items returns the elements of a sequence node (nil for nil or another kind).
func items(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
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

// lineOf returns the line of key's value in mapping n, or n's own line (0 for nil).
func lineOf(n *yaml.Node, key string) int {
	if n == nil {
		return 0
	}
	if v := valueOf(n, key); v != nil {
		return v.Line
	}
	return n.Line
}
