package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wardsec/ward/agent/internal/witness"
)

func TestEvidenceCheckpointsPrintsTheClinicsCopy(t *testing.T) {
	dir := t.TempDir()
	c, _ := witness.OpenCopy(dir)
	head := strings.Repeat("ab", 32)
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, e := range []witness.Entry{
		{Tenant: "clinic-a", Size: 100, Head: head, Time: at, WitnessSignature: []byte{1}},
		{Tenant: "clinic-a", Size: 200, Head: strings.Repeat("cd", 32), Time: at,
			Refused: "history rewritten: record 100"},
	} {
		if err := c.Append(e); err != nil {
			t.Fatal(err)
		}
	}

	var out bytes.Buffer
	args := []string{"evidence", "checkpoints", "--state-dir", dir}
	if err := run(context.Background(), args, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 countersigned, 1 refused", head, "countersigned",
		"REFUSED: history rewritten: record 100", "2026-03-04T05:06:07Z"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if err := run(context.Background(), append(args, "-o", "json"), &out,
		&bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	var got []witness.Entry
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got) != 2 ||
		got[0].Head != head || got[1].Refused == "" {
		t.Fatalf("json %s: %+v, %v", out.String(), got, err)
	}
}

func TestEvidenceCheckpointsUsage(t *testing.T) {
	empty := t.TempDir()
	for _, args := range [][]string{{"evidence"}, {"evidence", "records"},
		{"evidence", "checkpoints"}, {"evidence", "checkpoints", "--state-dir", empty, "-o", "x"}} {
		err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
		if !errors.Is(err, errUsage) {
			t.Errorf("%v: err = %v, want usage", args, err)
		}
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"evidence", "checkpoints", "--state-dir", empty},
		&out, &bytes.Buffer{})
	if err != nil || !strings.Contains(out.String(), "no checkpoint") {
		t.Fatalf("empty copy: %v\n%s", err, out.String())
	}
}
