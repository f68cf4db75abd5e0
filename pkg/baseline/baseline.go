// Package baseline is the model of a Ward baseline: a versioned list of checks, each with
// an id, a title, a rationale, the HIPAA citations it evidences, a severity, the platforms
// it applies to, a test the agent evaluates, and the runbook that remediates it. Parse
// loads and validates a YAML document (schema in docs/baseline.md); Shipped returns the
// hipaa-v1 baseline embedded in this package.
//
// Values of this package are plain data: safe to share between goroutines once parsed,
// as long as nobody modifies them.
package baseline

import "time"

// Severity ranks how much a failing check matters.
type Severity string

// Severities, from least to most urgent.
const (
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// Platform is a family of operating systems a check applies to.
type Platform string

// Platforms. Debian covers Debian and Ubuntu; RHEL covers RHEL, CentOS, Rocky, Alma,
// Oracle Linux and Fedora; NixOS is NixOS.
const (
	PlatformDebian Platform = "debian"
	PlatformRHEL   Platform = "rhel"
	PlatformNixOS  Platform = "nixos"
)

// Baseline is a parsed, validated baseline document.
type Baseline struct {
	ID          string        `yaml:"id"`          // e.g. "hipaa-v1"
	Version     string        `yaml:"version"`     // document version, e.g. "1.0.0"
	Title       string        `yaml:"title"`       // for operators
	Description string        `yaml:"description"` // free text
	Checks      []Check       `yaml:"checks"`      // at least one; ids unique
	Files       []ManagedFile `yaml:"files"`       // files the restore_file action writes
	Exceptions  []Exception   `yaml:"exceptions"`  // checks excluded, with a reason

	File string `yaml:"-"` // name the document was loaded from
}

// Check is one baseline check.
type Check struct {
	ID        string     `yaml:"id"`        // AREA-NNN, unique within the baseline
	Title     string     `yaml:"title"`     // what the host must do
	Rationale string     `yaml:"rationale"` // why, for auditors and technicians
	Citations []string   `yaml:"hipaa"`     // e.g. "164.312(b)"; at least one
	Severity  Severity   `yaml:"severity"`
	Platforms []Platform `yaml:"platforms"` // at least one
	Test      Test       `yaml:"test"`
	// Runbook is the id of the runbook that remediates the check, or "none".
	Runbook string `yaml:"runbook"`

	Line int `yaml:"-"` // line of the check in its file
}

// HasRunbook reports whether the check names a runbook.
func (c *Check) HasRunbook() bool { return c.Runbook != "" && c.Runbook != RunbookNone }

// AppliesTo reports whether the check applies to platform p.
func (c *Check) AppliesTo(p Platform) bool {
	for _, q := range c.Platforms {
		if q == p {
			return true
		}
	}
	return false
}

// RunbookNone is the runbook field's value for a check no runbook can fix safely.
const RunbookNone = "none"

// Test kinds. Test.Kind is one of these; the fields each kind uses are listed in
// docs/baseline.md and enforced by Parse.
const (
	KindFileExists       = "file_exists"       // Path (glob: any match)
	KindFileAbsent       = "file_absent"       // Path (glob: no match)
	KindFileMode         = "file_mode"         // Path (glob: every match), Mode, Owner, Group
	KindRegexMatch       = "regex_match"       // Path (glob), Pattern, Include
	KindRegexNoMatch     = "regex_no_match"    // Path (glob), Pattern, Include
	KindKeyValue         = "key_value"         // Path, Key, Syntax, Default, Expect
	KindSysctl           = "sysctl"            // Key, Expect
	KindModuleLoaded     = "module_loaded"     // Module
	KindModuleDisabled   = "module_disabled"   // Module: blacklisted or install-disabled, not loaded
	KindMountOptions     = "mount_options"     // Mount, Options
	KindServiceActive    = "service_active"    // Service
	KindServiceEnabled   = "service_enabled"   // Service
	KindServiceInactive  = "service_inactive"  // Service: neither active nor enabled
	KindPackageInstalled = "package_installed" // Package, MinVersion
	KindPackageAbsent    = "package_absent"    // Package
	KindListening        = "listening"         // Protocol, Ports: something listens
	KindNotListening     = "not_listening"     // Protocol, Ports: nothing listens
	KindUsers            = "users"             // Rule, Names
	KindCommand          = "command"           // Command (allowlisted), Pattern or Expect
	KindAny              = "any"               // Any: at least one sub-test passes
	KindAll              = "all"               // All: every sub-test passes
)

// Rules of the users kind.
const (
	RuleEmptyPassword  = "empty_password"  // no account with an empty password field
	RuleOnlyRootUID0   = "only_root_uid0"  // root is the only account with UID 0
	RuleUniqueUIDs     = "unique_uids"     // no two accounts share a UID
	RuleUniqueNames    = "unique_names"    // no two accounts share a name
	RuleNoSharedLogins = "no_shared_login" // none of Names has a login shell
)

// Syntaxes of configuration files for key_value tests, regex Include and actions.
const (
	SyntaxSSHD   = "sshd"   // "Key value", case-insensitive keys, first match wins, Include, Match ends
	SyntaxSpace  = "space"  // "key value", last match wins
	SyntaxEquals = "equals" // "key = value", last match wins
)

// Test is what the agent evaluates for a check. Kind selects the fields that apply.
type Test struct {
	Kind string `yaml:"kind"`

	Path    string `yaml:"path"`    // absolute, under the host root; globs where noted
	Pattern string `yaml:"pattern"` // RE2 regular expression, matched per line (multi-line mode)
	// Include names the syntax whose include directives are followed when reading Path:
	// "sshd" follows Include lines (relative to /etc/ssh). Empty follows nothing.
	Include string `yaml:"include"`

	Key     string `yaml:"key"`     // key_value: setting name; sysctl: dotted name
	Syntax  string `yaml:"syntax"`  // key_value: sshd, space or equals
	Default string `yaml:"default"` // key_value: value when the key is absent; empty: absent fails
	Expect  Expect `yaml:"expect"`

	Mode  string `yaml:"mode"`  // file_mode: most permissive mode allowed, octal ("0640")
	Owner string `yaml:"owner"` // file_mode: required owner name
	Group string `yaml:"group"` // file_mode: required group name (empty: any)

	Module  string   `yaml:"module"`  // kernel module name
	Mount   string   `yaml:"mount"`   // mount point
	Options []string `yaml:"options"` // mount options that must all be present

	Service    string `yaml:"service"`     // systemd unit name; ".service" may be omitted
	Package    string `yaml:"package"`     // package name in the platform's package manager
	MinVersion string `yaml:"min_version"` // package_installed: lowest acceptable version

	Protocol string `yaml:"protocol"` // tcp or udp (both address families)
	Ports    []int  `yaml:"ports"`

	Rule  string   `yaml:"rule"`  // users rule
	Names []string `yaml:"names"` // users no_shared_login: account names

	// Command names an entry of Commands, the allowlist compiled into the agent; its
	// arguments are fixed there. The test applies Pattern or Expect to its output.
	Command string `yaml:"command"`

	Any []Test `yaml:"any"`
	All []Test `yaml:"all"`

	Line int `yaml:"-"` // line of the test in its file
}

// Expect is a condition on a value. Every field set must hold; at least one must be set.
type Expect struct {
	Equals     string   `yaml:"equals"`      // case-insensitive equality
	NotEquals  string   `yaml:"not_equals"`  // case-insensitive inequality
	In         []string `yaml:"in"`          // one of, case-insensitive
	Matches    string   `yaml:"matches"`     // RE2 regular expression the value matches
	NotMatches string   `yaml:"not_matches"` // RE2 regular expression the value must not match
	Min        *float64 `yaml:"min"`         // numeric lower bound, inclusive
	Max        *float64 `yaml:"max"`         // numeric upper bound, inclusive
}

// IsZero reports whether no condition is set.
func (e Expect) IsZero() bool {
	return e.Equals == "" && e.NotEquals == "" && len(e.In) == 0 && e.Matches == "" &&
		e.NotMatches == "" && e.Min == nil && e.Max == nil
}

// ManagedFile is a file the baseline owns: restore_file writes it as described.
type ManagedFile struct {
	Path    string `yaml:"path"`    // absolute
	Mode    string `yaml:"mode"`    // octal, e.g. "0640"
	Owner   string `yaml:"owner"`   // default root
	Group   string `yaml:"group"`   // default root
	Content string `yaml:"content"` // the whole file

	Line int `yaml:"-"`
}

// Exception excludes a check for a recorded reason. It is itself evidence.
type Exception struct {
	Check   string    `yaml:"check"`   // check id
	Reason  string    `yaml:"reason"`  // required
	By      string    `yaml:"by"`      // who approved it
	Expires time.Time `yaml:"expires"` // zero: no expiry

	Line int `yaml:"-"`
}

// Check returns the check with id, or nil.
func (b *Baseline) Check(id string) *Check {
	for i := range b.Checks {
		if b.Checks[i].ID == id {
			return &b.Checks[i]
		}
	}
	return nil
}

// ManagedFile returns the managed file at path, or nil.
func (b *Baseline) ManagedFile(path string) *ManagedFile {
	for i := range b.Files {
		if b.Files[i].Path == path {
			return &b.Files[i]
		}
	}
	return nil
}

// Excepted returns the exception for check id in force at now, or nil.
func (b *Baseline) Excepted(id string, now time.Time) *Exception {
	for i := range b.Exceptions {
		e := &b.Exceptions[i]
		if e.Check == id && (e.Expires.IsZero() || now.Before(e.Expires)) {
			return e
		}
	}
	return nil
}
