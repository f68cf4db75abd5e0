package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/wardsec/ward/agent/internal/witness"
)

const evidenceUsage = `usage:
  ward-agent evidence checkpoints --state-dir DIR [-o table|json]
`

// runEvidence prints what a collector keeps of its clinic's evidence log.
func runEvidence(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "checkpoints" {
		fmt.Fprint(stderr, evidenceUsage)
		return errUsage
	}
	fs := flag.NewFlagSet("evidence checkpoints", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stateDir := fs.String("state-dir", "", "the agent's state directory (required)")
	output := fs.String("o", "table", "output format: table or json")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if err := required(fs, map[string]string{"state-dir": *stateDir}); err != nil {
		return err
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(stderr, "-o must be table or json, not %q\n", *output)
		return errUsage
	}

	c, err := witness.OpenCopy(*stateDir)
	if err != nil {
		return err
	}
	entries, err := c.Entries()
	if err != nil {
		return err
	}
	if *output == "json" {
		if entries == nil {
			entries = []witness.Entry{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	return printCheckpoints(stdout, c.Path(), entries)
}

// printCheckpoints writes the clinic's copy as a table an auditor can compare with the
// checkpoints of an exported bundle.
func printCheckpoints(w io.Writer, path string, entries []witness.Entry) error {
	refused := 0
	for _, e := range entries {
		if e.Refused != "" {
			refused++
		}
	}
	fmt.Fprintf(w, "Evidence checkpoints kept by this clinic's witness (%s):\n", path)
	fmt.Fprintf(w, "%d countersigned, %d refused.\n", len(entries)-refused, refused)
	if len(entries) == 0 {
		fmt.Fprintln(w, "This agent has witnessed no checkpoint (only collectors witness).")
		return nil
	}
	if refused > 0 {
		fmt.Fprintln(w, "REFUSED checkpoints contradict what this clinic countersigned "+
			"before: the log was changed after the fact.")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tSIZE\tSIGNED AT\tHEAD\tSTATUS")
	for _, e := range entries {
		status := "countersigned"
		if e.Refused != "" {
			status = "REFUSED: " + e.Refused
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", e.Tenant, e.Size,
			e.Time.UTC().Format(time.RFC3339), e.Head, status)
	}
	return tw.Flush()
}
