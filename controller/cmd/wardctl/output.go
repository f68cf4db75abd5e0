package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// jsonOptions write proto field names (snake_case) and every field, set or not, so that
// scripts can rely on the keys.
var jsonOptions = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// printJSON writes one message as indented JSON.
func (a *app) printJSON(m proto.Message) error {
	raw, err := jsonOptions.Marshal(m)
	if err != nil {
		return err
	}
	return a.writeIndented(raw)
}

// printJSONList writes messages as an indented JSON array ([] when empty).
func printJSONList[M proto.Message](a *app, ms []M) error {
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		raw, err := jsonOptions.Marshal(m)
		if err != nil {
			return err
		}
		parts = append(parts, string(raw))
	}
	return a.writeIndented([]byte("[" + strings.Join(parts, ",") + "]"))
}

func (a *app) writeIndented(raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := a.stdout.Write(buf.Bytes())
	return err
}

// table writes rows under a header, aligned in columns.
func (a *app) table(header []string, rows [][]string) error {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	return w.Flush()
}

// when formats a timestamp for tables: UTC RFC 3339, "-" when unset.
func when(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
