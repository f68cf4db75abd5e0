package tfcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGoodModule checks that a module using every construct the checks look into
// (dynamic blocks, for expressions, module outputs, data sources, lifecycle, egress to
// anywhere, ingress from a variable) has no problem.
func TestGoodModule(t *testing.T) {
	for _, dir := range []string{"testdata/good", "testdata/child"} {
		ps, err := Check(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			t.Errorf("%s: unexpected problem: %s", dir, p)
		}
	}
}

// TestBrokenModules checks that each check reports the module broken for it, at the
// right line, and that no other check fires there.
func TestBrokenModules(t *testing.T) {
	tests := []struct {
		dir   string
		check string
		line  int
	}{
		{"unformatted", CheckFormat, 2},
		{"syntax", CheckSyntax, 1},
		{"undeclared-var", CheckUndeclaredVar, 2},
		{"undefined-local", CheckUndefinedLocal, 6},
		{"unknown-resource", CheckUnknownRef, 7},
		{"unknown-data", CheckUnknownRef, 2},
		{"module-output", CheckModuleOutput, 8},
		{"module-input", CheckModuleInput, 4},
		{"missing-input", CheckMissingInput, 1},
		{"module-source", CheckModuleSource, 1},
		{"variable-type", CheckVariableType, 1},
		{"variable-doc", CheckVariableDoc, 1},
		{"required-var", CheckRequiredVar, 1},
		{"output-doc", CheckOutputDoc, 1},
		{"open-ingress-block", CheckOpenIngress, 8},
		{"open-ingress-ipv6", CheckOpenIngress, 8},
		{"open-ingress-rule", CheckOpenIngress, 3},
		{"open-ingress-sg-rule", CheckOpenIngress, 4},
		{"open-ingress-local", CheckOpenIngress, 2},
		{"open-ingress-default", CheckOpenIngress, 1},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			ps, err := Check(filepath.Join("testdata", tt.dir))
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != 1 {
				t.Fatalf("got %d problems, want exactly one %s:\n%s", len(ps), tt.check, list(ps))
			}
			p := ps[0]
			if p.Check != tt.check || p.Line != tt.line {
				t.Errorf("got %s, want [%s] at line %d", p, tt.check, tt.line)
			}
			if !strings.HasSuffix(p.File, filepath.Join(tt.dir, "main.tf")) {
				t.Errorf("problem placed in %s, want %s/main.tf", p.File, tt.dir)
			}
			t.Log(p)
		})
	}
}

// TestEveryBrokenModuleIsTested keeps the table above in step with testdata.
func TestEveryBrokenModuleIsTested(t *testing.T) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 22 {
		t.Errorf("testdata has %d modules; add the new ones to TestBrokenModules "+
			"and update this count", len(entries))
	}
}

func TestRenderDocs(t *testing.T) {
	m, err := Load("testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	readme := []byte("# good\n\n## Inputs\n\n" + BeginInputs + "\nold\n" + EndInputs +
		"\n\n## Outputs\n\n" + BeginOutputs + "\n" + EndOutputs + "\n")

	got, err := RenderDocs(m, readme)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| `allowed_cidrs` | Ranges allowed to connect. | `list(string)` | n/a | yes |",
		"| `ports` | Ports by name. | `map(number)` | `{ grpc = 7443 }` | no |",
		"| `optional_note` | A note that may be null. | `string` | `null` | no |",
		"| `group_id` | The security group. |",
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("rendered readme lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), "old") {
		t.Errorf("rendered readme kept the old table:\n%s", got)
	}
	if strings.Index(string(got), "allowed_cidrs") > strings.Index(string(got), "ports") {
		t.Errorf("required inputs are not listed first:\n%s", got)
	}

	if _, err := RenderDocs(m, []byte("# no markers\n")); err == nil {
		t.Error("RenderDocs accepted a readme without markers")
	}
}

func list(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}
