package tfcheck

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// openCIDRs are the ranges that mean "anyone on the internet".
var openCIDRs = map[string]bool{"0.0.0.0/0": true, "::/0": true}

// ingressAttributes lists, per resource type, the attributes of an ingress rule that hold
// source ranges.
var ingressAttributes = map[string][]string{
	"aws_security_group":                  {"cidr_blocks", "ipv6_cidr_blocks"},
	"aws_security_group_rule":             {"cidr_blocks", "ipv6_cidr_blocks"},
	"aws_vpc_security_group_ingress_rule": {"cidr_ipv4", "cidr_ipv6"},
}

// checkIngress reports ingress rules whose source ranges hold 0.0.0.0/0 or ::/0 written in
// the configuration, in a local, or in the default of a variable. A range that a caller
// passes through a variable without such a default is the caller's explicit choice.
func (m *Module) checkIngress() []Problem {
	var ps []Problem
	for key, b := range m.Resources {
		typ := b.Labels[0]
		attrs := ingressAttributes[typ]
		if attrs == nil {
			continue
		}
		for _, rule := range ingressRules(typ, b.Body) {
			for _, name := range attrs {
				if a := rule.body.Attributes[name]; a != nil {
					ps = append(ps, m.ruleSources(key, rule, a.Expr)...)
				}
			}
		}
	}
	return ps
}

// ingressRule is a body that describes ingress rules, with the for_each expressions that
// its iterators (each, or a dynamic block's) take their values from.
type ingressRule struct {
	body      *hclsyntax.Body
	iterators map[string]hclsyntax.Expression
}

// ingressRules returns the ingress rules of a resource of type typ.
func ingressRules(typ string, body *hclsyntax.Body) []ingressRule {
	iterators := map[string]hclsyntax.Expression{}
	if a := body.Attributes["for_each"]; a != nil {
		iterators["each"] = a.Expr
	}

	switch typ {
	case "aws_security_group":
		var out []ingressRule
		for _, b := range body.Blocks {
			switch {
			case b.Type == "ingress":
				out = append(out, ingressRule{b.Body, iterators})
			case b.Type == "dynamic" && len(b.Labels) == 1 && b.Labels[0] == "ingress":
				out = append(out, dynamicRules(b, iterators)...)
			}
		}
		return out
	case "aws_security_group_rule":
		if literalString(body.Attributes["type"]) == "ingress" {
			return []ingressRule{{body, iterators}}
		}
		return nil
	default:
		return []ingressRule{{body, iterators}}
	}
}

func dynamicRules(b *hclsyntax.Block, outer map[string]hclsyntax.Expression) []ingressRule {
	iterators := map[string]hclsyntax.Expression{}
	for k, v := range outer {
		iterators[k] = v
	}
	if a := b.Body.Attributes["for_each"]; a != nil {
		iterators[dynamicIterator(b)] = a.Expr
	}

	var out []ingressRule
	for _, c := range b.Body.Blocks {
		if c.Type == "content" {
			out = append(out, ingressRule{c.Body, iterators})
		}
	}
	return out
}

// ruleSources reports the open ranges of one source attribute of a rule, following the
// iterators it uses back to their for_each.
func (m *Module) ruleSources(resource string, rule ingressRule,
	expr hclsyntax.Expression) []Problem {
	seen := map[string]bool{}
	ps := m.openSources(resource, expr, seen)
	for _, t := range hclsyntax.Variables(expr) {
		if src := rule.iterators[t.RootName()]; src != nil && !seen["iter."+t.RootName()] {
			seen["iter."+t.RootName()] = true
			ps = append(ps, m.openSources(resource, src, seen)...)
		}
	}
	return ps
}

// openSources reports the open ranges that expr can evaluate to: literals in it, and the
// locals and variable defaults it refers to. seen stops cycles between locals.
func (m *Module) openSources(resource string, expr hclsyntax.Expression,
	seen map[string]bool) []Problem {
	var ps []Problem
	for _, r := range openLiterals(expr) {
		ps = append(ps, problemAt(CheckOpenIngress, r,
			"%s: ingress from an open range written in the configuration; "+
				"take the allowed ranges from a variable", resource))
	}

	for _, t := range hclsyntax.Variables(expr) {
		name := attrName(t, 1)
		key := t.RootName() + "." + name
		if name == "" || seen[key] {
			continue
		}
		seen[key] = true
		switch t.RootName() {
		case "local":
			if a := m.Locals[name]; a != nil {
				ps = append(ps, m.openSources(resource, a.Expr, seen)...)
			}
		case "var":
			if v := m.Variables[name]; v != nil && v.Default != nil &&
				len(openLiterals(v.Default)) > 0 {
				ps = append(ps, problemAt(CheckOpenIngress, v.Range,
					"%s: ingress from var.%s, whose default is an open range; "+
						"make the caller ask for it", resource, name))
			}
		}
	}
	return ps
}

// openLiterals returns where expr holds a literal 0.0.0.0/0 or ::/0.
func openLiterals(expr hclsyntax.Expression) []hcl.Range {
	var out []hcl.Range
	hclsyntax.VisitAll(expr, func(n hclsyntax.Node) hcl.Diagnostics {
		lit, ok := n.(*hclsyntax.LiteralValueExpr)
		if ok && lit.Val.IsKnown() && !lit.Val.IsNull() && lit.Val.Type() == cty.String &&
			openCIDRs[lit.Val.AsString()] {
			out = append(out, lit.SrcRange)
		}
		return nil
	})
	return out
}
