// Package strictyaml decodes YAML documents into Go structs and reports every mistake with
// the file and line it sits on: keys that name no field, values of the wrong type and
// documents that are not what the caller expects. Baselines and runbooks use it so that an
// operator's typo is refused with a pointer to where it is, never silently ignored.
package strictyaml

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a document. Line is 1-based; zero when unknown.
type Error struct {
	File   string // name the caller gave the document, e.g. "hipaa-v1.yaml"
	Line   int
	Reason string
}

// Error formats the problem as "file:line: reason".
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Reason)
}

// Errorf returns an *Error for file and line.
func Errorf(file string, line int, format string, args ...any) *Error {
	return &Error{File: file, Line: line, Reason: fmt.Sprintf(format, args...)}
}

// Parse parses data into its document node's content (the top-level mapping). It returns
// an *Error for a syntax error or an empty document.
func Parse(file string, data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fromYAML(file, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, Errorf(file, 0, "empty document")
	}
	return doc.Content[0], nil
}

// Decode decodes n into v (a pointer to a struct), refusing keys that name no field of
// the destination (following yaml tags, inline structs, slices, maps and pointers). It
// returns nil or the problems joined with errors.Join, each an *Error.
func Decode(file string, n *yaml.Node, v any) error {
	var errs []error
	checkFields(file, n, reflect.TypeOf(v), &errs)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	if err := n.Decode(v); err != nil {
		return fromYAML(file, err)
	}
	return nil
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// fromYAML turns the yaml package's errors into *Error values.
func fromYAML(file string, err error) error {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}

	var errs []error
	for _, m := range msgs {
		if sub := lineRE.FindStringSubmatch(m); sub != nil {
			line, _ := strconv.Atoi(sub[1])
			errs = append(errs, Errorf(file, line, "%s", sub[2]))
			continue
		}
		errs = append(errs, Errorf(file, 0, "%s", strings.TrimPrefix(m, "yaml: ")))
	}
	return errors.Join(errs...)
}

// checkFields walks n against t and appends an *Error for every unknown mapping key.
func checkFields(file string, n *yaml.Node, t reflect.Type, errs *[]error) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}

	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := fieldsOf(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			ft, ok := fields[key.Value]
			if !ok {
				*errs = append(*errs, Errorf(file, key.Line, "unknown field %q", key.Value))
				continue
			}
			checkFields(file, val, ft, errs)
		}
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && n.Kind == yaml.SequenceNode:
		for _, c := range n.Content {
			checkFields(file, c, t.Elem(), errs)
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			checkFields(file, n.Content[i], t.Elem(), errs)
		}
	}
}

// fieldsOf maps the yaml key of every decodable field of struct type t to its type.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type)
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range fieldsOf(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}
