// Package tfcheck checks Terraform modules offline, where `terraform validate` cannot run
// because no provider can be downloaded: formatting, syntax, references between variables,
// locals, resources and module calls, the documentation of variables and outputs, and
// security group rules that open a port to the whole internet.
//
// It reads only the HCL native syntax (.tf files); JSON configuration is ignored.
package tfcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Variable is one `variable` block of a module.
type Variable struct {
	Name        string
	Description string               // empty when the block has none
	Type        hclsyntax.Expression // nil when the block has no type
	Default     hclsyntax.Expression // nil for a required variable
	Nullable    hclsyntax.Expression // nil when not set
	Range       hcl.Range            // the block header
}

// Required reports whether a caller must set the variable: it has no default.
func (v *Variable) Required() bool { return v.Default == nil }

// Output is one `output` block of a module.
type Output struct {
	Name        string
	Description string // empty when the block has none
	Range       hcl.Range
}

// Call is one `module` block: a call of another module.
type Call struct {
	Name   string
	Source string                          // the literal source address
	Inputs map[string]*hclsyntax.Attribute // arguments other than meta-arguments
	Range  hcl.Range
}

// Module is the parsed content of one directory of .tf files.
// Files maps a file name (relative to Dir) to its source and parsed body; a file that did
// not parse is kept with a nil Body.
type Module struct {
	Dir       string
	Files     map[string]*File
	Variables map[string]*Variable
	Outputs   map[string]*Output
	Locals    map[string]*hclsyntax.Attribute
	Calls     map[string]*Call
	Resources map[string]*hclsyntax.Block // keyed "type.name"
	Data      map[string]*hclsyntax.Block // keyed "type.name"
	Blocks    []*hclsyntax.Block          // every top-level block, in file order
}

// File is one .tf file of a module.
type File struct {
	Src   []byte
	Body  *hclsyntax.Body // nil when the file has syntax errors
	Diags hcl.Diagnostics
}

// metaArguments are the arguments of a module block that are not inputs of the module.
var metaArguments = map[string]bool{
	"source": true, "version": true, "count": true, "for_each": true,
	"providers": true, "depends_on": true,
}

// Load parses every .tf file of dir. It returns an error only when dir cannot be read;
// syntax errors are kept in the files and reported by Check.
func Load(dir string) (*Module, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("load %s: no .tf files", dir)
	}
	sort.Strings(names)

	m := &Module{
		Dir:       dir,
		Files:     map[string]*File{},
		Variables: map[string]*Variable{},
		Outputs:   map[string]*Output{},
		Locals:    map[string]*hclsyntax.Attribute{},
		Calls:     map[string]*Call{},
		Resources: map[string]*hclsyntax.Block{},
		Data:      map[string]*hclsyntax.Block{},
	}
	parser := hclparse.NewParser()
	for _, name := range names {
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		f, diags := parser.ParseHCL(src, name)
		file := &File{Src: src, Diags: diags}
		m.Files[filepath.Base(name)] = file
		if diags.HasErrors() || f == nil {
			continue
		}
		file.Body = f.Body.(*hclsyntax.Body)
		m.index(file.Body)
	}
	return m, nil
}

// index records the top-level blocks of one file.
func (m *Module) index(body *hclsyntax.Body) {
	for _, b := range body.Blocks {
		m.Blocks = append(m.Blocks, b)
		switch {
		case b.Type == "variable" && len(b.Labels) == 1:
			m.Variables[b.Labels[0]] = newVariable(b)
		case b.Type == "output" && len(b.Labels) == 1:
			m.Outputs[b.Labels[0]] = &Output{
				Name:        b.Labels[0],
				Description: literalString(b.Body.Attributes["description"]),
				Range:       b.DefRange(),
			}
		case b.Type == "locals":
			for name, a := range b.Body.Attributes {
				m.Locals[name] = a
			}
		case b.Type == "module" && len(b.Labels) == 1:
			m.Calls[b.Labels[0]] = newCall(b)
		case b.Type == "resource" && len(b.Labels) == 2:
			m.Resources[b.Labels[0]+"."+b.Labels[1]] = b
		case b.Type == "data" && len(b.Labels) == 2:
			m.Data[b.Labels[0]+"."+b.Labels[1]] = b
		}
	}
}

func newVariable(b *hclsyntax.Block) *Variable {
	v := &Variable{
		Name:        b.Labels[0],
		Description: literalString(b.Body.Attributes["description"]),
		Range:       b.DefRange(),
	}
	if a := b.Body.Attributes["type"]; a != nil {
		v.Type = a.Expr
	}
	if a := b.Body.Attributes["default"]; a != nil {
		v.Default = a.Expr
	}
	if a := b.Body.Attributes["nullable"]; a != nil {
		v.Nullable = a.Expr
	}
	return v
}

func newCall(b *hclsyntax.Block) *Call {
	c := &Call{
		Name:   b.Labels[0],
		Source: literalString(b.Body.Attributes["source"]),
		Inputs: map[string]*hclsyntax.Attribute{},
		Range:  b.DefRange(),
	}
	for name, a := range b.Body.Attributes {
		if !metaArguments[name] {
			c.Inputs[name] = a
		}
	}
	return c
}

// LocalSource reports the directory of a module call whose source is a local path
// ("./x" or "../x"), resolved against the calling module; ok is false for registry or
// remote sources.
func (m *Module) LocalSource(c *Call) (dir string, ok bool) {
	if !strings.HasPrefix(c.Source, "./") && !strings.HasPrefix(c.Source, "../") {
		return "", false
	}
	return filepath.Join(m.Dir, filepath.FromSlash(c.Source)), true
}

// literalString returns the value of an attribute that is a plain string without
// interpolation, or "" when a is nil or not such a string.
func literalString(a *hclsyntax.Attribute) string {
	if a == nil {
		return ""
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || !v.IsKnown() || v.IsNull() || !v.Type().Equals(ctyString) {
		return ""
	}
	return v.AsString()
}
