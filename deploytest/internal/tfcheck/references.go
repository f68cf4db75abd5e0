package tfcheck

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// builtinRoots are the reference roots that are not resources: checked separately or
// always present.
var builtinRoots = map[string]bool{
	"var": true, "local": true, "module": true, "data": true, "path": true,
	"terraform": true, "count": true, "each": true, "self": true,
}

// skippedBlocks hold traversals that name configuration addresses, not values.
var skippedBlocks = map[string]bool{"moved": true, "import": true, "removed": true}

// reference is one traversal found in the module, with the attribute it sits in.
type reference struct {
	traversal hcl.Traversal
	scope     map[string]bool // names bound by enclosing dynamic blocks
}

// references returns every traversal in the module's attributes, except those that name
// addresses rather than values (lifecycle.ignore_changes, provider, providers, iterator).
func (m *Module) references() []reference {
	var refs []reference
	for _, b := range m.Blocks {
		if skippedBlocks[b.Type] {
			continue
		}
		refs = collect(refs, b.Body, b.Type, nil)
	}
	return refs
}

func collect(refs []reference, body *hclsyntax.Body, blockType string,
	scope map[string]bool) []reference {
	for name, a := range body.Attributes {
		if skippedAttribute(blockType, name) {
			continue
		}
		for _, t := range hclsyntax.Variables(a.Expr) {
			refs = append(refs, reference{traversal: t, scope: scope})
		}
	}
	for _, b := range body.Blocks {
		inner := scope
		if b.Type == "dynamic" && len(b.Labels) == 1 {
			inner = withName(scope, dynamicIterator(b))
		}
		refs = collect(refs, b.Body, b.Type, inner)
	}
	return refs
}

func skippedAttribute(blockType, name string) bool {
	switch {
	case blockType == "lifecycle" && name == "ignore_changes":
		return true
	case blockType == "dynamic" && name == "iterator":
		return true
	case name == "provider" || name == "providers":
		return true
	}
	return false
}

// dynamicIterator returns the name a dynamic block binds: its iterator argument or label.
func dynamicIterator(b *hclsyntax.Block) string {
	if a := b.Body.Attributes["iterator"]; a != nil {
		if t, diags := hcl.AbsTraversalForExpr(a.Expr); !diags.HasErrors() {
			return t.RootName()
		}
	}
	return b.Labels[0]
}

func withName(scope map[string]bool, name string) map[string]bool {
	out := map[string]bool{name: true}
	for k := range scope {
		out[k] = true
	}
	return out
}

// checkReferences checks that every var, local, resource, data source and module a
// traversal names is declared in the module.
func (m *Module) checkReferences() []Problem {
	var ps []Problem
	for _, ref := range m.references() {
		t := ref.traversal
		root := t.RootName()
		r := t.SourceRange()
		if ref.scope[root] {
			continue
		}
		first, second := attrName(t, 1), attrName(t, 2)
		switch {
		case root == "var" && first != "" && m.Variables[first] == nil:
			ps = append(ps, problemAt(CheckUndeclaredVar, r,
				"var.%s is not a declared variable", first))
		case root == "local" && first != "" && m.Locals[first] == nil:
			ps = append(ps, problemAt(CheckUndefinedLocal, r,
				"local.%s is not defined in a locals block", first))
		case root == "module" && first != "" && m.Calls[first] == nil:
			ps = append(ps, problemAt(CheckUnknownRef, r,
				"module.%s is not a module block of this module", first))
		case root == "data" && first != "" && second != "" &&
			m.Data[first+"."+second] == nil:
			ps = append(ps, problemAt(CheckUnknownRef, r,
				"data.%s.%s is not declared", first, second))
		case !builtinRoots[root] && first != "" && m.Resources[root+"."+first] == nil:
			ps = append(ps, problemAt(CheckUnknownRef, r,
				"%s.%s is not a declared resource", root, first))
		}
	}
	return ps
}

// attrName returns the name of the i-th step of t when it is an attribute access.
func attrName(t hcl.Traversal, i int) string {
	if len(t) <= i {
		return ""
	}
	if a, ok := t[i].(hcl.TraverseAttr); ok {
		return a.Name
	}
	return ""
}

// checkCalls checks every call of a local module against the called module's variables
// and outputs.
func (m *Module) checkCalls() []Problem {
	var ps []Problem
	callees := map[string]*Module{}
	for _, c := range m.Calls {
		dir, ok := m.LocalSource(c)
		if !ok {
			continue
		}
		callee, err := Load(dir)
		if err != nil {
			ps = append(ps, problemAt(CheckModuleSource, c.Range,
				"module %q: %v", c.Name, err))
			continue
		}
		callees[c.Name] = callee
		ps = append(ps, checkInputs(c, callee)...)
	}

	for _, ref := range m.references() {
		t := ref.traversal
		name, output := attrName(t, 1), attrName(t, 2)
		callee := callees[name]
		if t.RootName() != "module" || callee == nil || output == "" {
			continue
		}
		if callee.Outputs[output] == nil {
			ps = append(ps, problemAt(CheckModuleOutput, t.SourceRange(),
				"module.%s.%s: %s has no output %q", name, output, callee.Dir, output))
		}
	}
	return ps
}

func checkInputs(c *Call, callee *Module) []Problem {
	var ps []Problem
	for name, a := range c.Inputs {
		if callee.Variables[name] == nil {
			ps = append(ps, problemAt(CheckModuleInput, a.NameRange,
				"module %q: %s declares no variable %q", c.Name, callee.Dir, name))
		}
	}
	for name, v := range callee.Variables {
		if v.Required() && c.Inputs[name] == nil {
			ps = append(ps, problemAt(CheckMissingInput, c.Range,
				"module %q: required variable %q of %s is not set", c.Name, name, callee.Dir))
		}
	}
	return ps
}
