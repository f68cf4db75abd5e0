package tfcheck

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// The markers in a module's README between which RenderDocs writes the tables.
const (
	BeginInputs  = "<!-- BEGIN_INPUTS -->"
	EndInputs    = "<!-- END_INPUTS -->"
	BeginOutputs = "<!-- BEGIN_OUTPUTS -->"
	EndOutputs   = "<!-- END_OUTPUTS -->"
)

// maxDefault is the longest default shown in full in the inputs table.
const maxDefault = 40

// RenderDocs returns readme with the inputs and outputs tables of m written between their
// markers. It fails when a pair of markers is missing, so that every module documents
// both.
func RenderDocs(m *Module, readme []byte) ([]byte, error) {
	out, err := replaceBetween(readme, BeginInputs, EndInputs, m.inputsTable())
	if err != nil {
		return nil, err
	}
	return replaceBetween(out, BeginOutputs, EndOutputs, m.outputsTable())
}

func replaceBetween(doc []byte, begin, end, content string) ([]byte, error) {
	i := bytes.Index(doc, []byte(begin))
	j := bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		return nil, fmt.Errorf("readme: markers %s and %s not found in order", begin, end)
	}

	var b bytes.Buffer
	b.Write(doc[:i+len(begin)])
	b.WriteString("\n" + content)
	b.Write(doc[j:])
	return b.Bytes(), nil
}

func (m *Module) inputsTable() string {
	names := make([]string, 0, len(m.Variables))
	for name := range m.Variables {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		vi, vj := m.Variables[names[i]], m.Variables[names[j]]
		if vi.Required() != vj.Required() {
			return vi.Required()
		}
		return names[i] < names[j]
	})

	var b strings.Builder
	b.WriteString("| Name | Description | Type | Default | Required |\n")
	b.WriteString("|------|-------------|------|---------|:--------:|\n")
	for _, name := range names {
		v := m.Variables[name]
		typ, def, req := "", "n/a", "yes"
		if v.Type != nil {
			typ = "`" + m.source(v.Type.Range()) + "`"
		}
		if !v.Required() {
			req = "no"
			def = m.source(v.Default.Range())
			if len(def) > maxDefault {
				def = "see `variables.tf`"
			} else {
				def = "`" + def + "`"
			}
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n",
			name, cell(v.Description), cell(typ), cell(def), req)
	}
	return b.String()
}

func (m *Module) outputsTable() string {
	names := make([]string, 0, len(m.Outputs))
	for name := range m.Outputs {
		names = append(names, name)
	}
	sort.Strings(names)

	var b strings.Builder
	b.WriteString("| Name | Description |\n")
	b.WriteString("|------|-------------|\n")
	for _, name := range names {
		fmt.Fprintf(&b, "| `%s` | %s |\n", name, cell(m.Outputs[name].Description))
	}
	return b.String()
}

// source returns the configuration text of r with runs of white space folded to one.
func (m *Module) source(r hcl.Range) string {
	f := m.Files[filepath.Base(r.Filename)]
	if f == nil || r.End.Byte > len(f.Src) {
		return ""
	}
	return strings.Join(strings.Fields(string(f.Src[r.Start.Byte:r.End.Byte])), " ")
}

// cell makes text safe for one cell of a markdown table.
func cell(text string) string {
	text = strings.Join(strings.Fields(text), " ")
	return strings.ReplaceAll(text, "|", "\\|")
}
