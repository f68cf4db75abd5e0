package tfcheck

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

var ctyString = cty.String

// The names of the checks, as Problem.Check reports them.
const (
	CheckFormat         = "format"          // the file differs from `terraform fmt` output
	CheckSyntax         = "syntax"          // the file does not parse
	CheckVariableType   = "variable-type"   // a variable has no type
	CheckVariableDoc    = "variable-doc"    // a variable has no description
	CheckRequiredVar    = "required-var"    // a default = null that callers may not use
	CheckOutputDoc      = "output-doc"      // an output has no description
	CheckUndeclaredVar  = "undeclared-var"  // var.X without a variable "X"
	CheckUndefinedLocal = "undefined-local" // local.X without a local X
	CheckUnknownRef     = "unknown-ref"     // a resource, data source or module not declared
	CheckModuleOutput   = "module-output"   // module.M.X where M has no output X
	CheckModuleInput    = "module-input"    // an argument that the called module does not declare
	CheckMissingInput   = "missing-input"   // a required variable of the called module not set
	CheckModuleSource   = "module-source"   // the called local module cannot be loaded
	CheckOpenIngress    = "open-ingress"    // ingress from 0.0.0.0/0 or ::/0 not asked for by a variable
)

// Problem is one finding of Check, placed at a file and line.
type Problem struct {
	Check   string // one of the Check constants
	File    string
	Line    int
	Message string
}

// String formats the problem as "file:line: [check] message".
func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: [%s] %s", p.File, p.Line, p.Check, p.Message)
}

func problemAt(check string, r hcl.Range, format string, args ...any) Problem {
	return Problem{Check: check, File: r.Filename, Line: r.Start.Line,
		Message: fmt.Sprintf(format, args...)}
}

// Check runs every check on the module in dir and returns the problems sorted by file
// and line. Local modules that it calls are loaded to check the call, not checked
// themselves: run Check on each of them as well. The error is for a directory that cannot
// be read, never for a problem in the configuration.
func Check(dir string) ([]Problem, error) {
	m, err := Load(dir)
	if err != nil {
		return nil, err
	}

	var ps []Problem
	ps = append(ps, m.checkFiles()...)
	ps = append(ps, m.checkDeclarations()...)
	ps = append(ps, m.checkReferences()...)
	ps = append(ps, m.checkCalls()...)
	ps = append(ps, m.checkIngress()...)

	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].File != ps[j].File {
			return ps[i].File < ps[j].File
		}
		return ps[i].Line < ps[j].Line
	})
	return ps, nil
}

// checkFiles reports syntax errors and files that `terraform fmt` would change.
func (m *Module) checkFiles() []Problem {
	var ps []Problem
	for name, f := range m.Files {
		path := filepath.Join(m.Dir, name)
		for _, d := range f.Diags {
			if d.Severity != hcl.DiagError {
				continue
			}
			r := hcl.Range{Filename: path}
			if d.Subject != nil {
				r = *d.Subject
			}
			ps = append(ps, problemAt(CheckSyntax, r, "%s: %s", d.Summary, d.Detail))
		}
		if f.Body == nil {
			continue
		}
		if formatted := hclwrite.Format(f.Src); !bytes.Equal(formatted, f.Src) {
			ps = append(ps, Problem{Check: CheckFormat, File: path,
				Line: firstDifference(f.Src, formatted), Message: "not formatted (terraform fmt)"})
		}
	}
	return ps
}

// firstDifference returns the 1-based line of the first byte where a and b differ.
func firstDifference(a, b []byte) int {
	line := 1
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return line
		}
		if a[i] == '\n' {
			line++
		}
	}
	return line
}

// checkDeclarations checks that variables and outputs are typed and described.
func (m *Module) checkDeclarations() []Problem {
	var ps []Problem
	for _, v := range m.Variables {
		if v.Type == nil {
			ps = append(ps, problemAt(CheckVariableType, v.Range,
				"variable %q has no type", v.Name))
		}
		if v.Description == "" {
			ps = append(ps, problemAt(CheckVariableDoc, v.Range,
				"variable %q has no description", v.Name))
		}
		if v.Default != nil && isNull(v.Default) && isFalse(v.Nullable) {
			ps = append(ps, problemAt(CheckRequiredVar, v.Range,
				"variable %q is required (nullable = false) but has default = null: "+
					"remove the default", v.Name))
		}
	}
	for _, o := range m.Outputs {
		if o.Description == "" {
			ps = append(ps, problemAt(CheckOutputDoc, o.Range,
				"output %q has no description", o.Name))
		}
	}
	return ps
}

func isNull(e hclsyntax.Expression) bool {
	v, diags := e.Value(nil)
	return !diags.HasErrors() && v.IsNull()
}

func isFalse(e hclsyntax.Expression) bool {
	if e == nil {
		return false
	}
	v, diags := e.Value(nil)
	return !diags.HasErrors() && v.IsKnown() && !v.IsNull() &&
		v.Type() == cty.Bool && v.False()
}
