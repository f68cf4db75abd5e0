package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wardsec/ward/pkg/classify"
	"github.com/wardsec/ward/pkg/nmapxml"
)

// classifiedHost is one line of `wardctl classify` output.
type classifiedHost struct {
	File          string   `json:"file"`
	IP            string   `json:"ip"`
	MAC           string   `json:"mac"`
	Vendor        string   `json:"vendor"`
	Hostname      string   `json:"hostname"`
	Type          string   `json:"type"`
	Tier          int      `json:"tier"`
	ShouldMonitor bool     `json:"should_monitor"`
	Strategy      string   `json:"strategy"`
	Enrollment    string   `json:"enrollment"`
	Confidence    float64  `json:"confidence"`
	Reasons       []string `json:"reasons"`
	Controls      []string `json:"controls"`
}

// classifyCommand classifies saved nmap XML offline: it needs no controller and no
// credentials.
func (a *app) classifyCommand() *cobra.Command {
	var files []string
	var prefixes string
	cmd := &cobra.Command{
		Use:   "classify --nmap-xml FILE [--nmap-xml FILE ...]",
		Short: "Classify the hosts of saved nmap XML offline (one JSON object per host)",
		Long: "Classify reads scans saved with `nmap -oX` and prints, for each host that was " +
			"up, one JSON object per line: what it is, its tier, how Ward would watch and " +
			"enroll it, the confidence with its reasons, and the HIPAA controls it is " +
			"evidence for. The output is always JSON lines, whatever --output says. No " +
			"controller is contacted and no credentials are needed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return errors.New("classify: give at least one --nmap-xml FILE")
			}
			vendors, err := classify.LoadVendors(prefixes)
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "wardctl: %v; using the embedded vendor "+
					"table (%d prefixes)\n", err, vendors.Len())
			}
			return a.classifyFiles(classify.New(vendors), files)
		},
	}
	cmd.Flags().StringArrayVar(&files, "nmap-xml", nil, "nmap XML file (repeatable)")
	cmd.Flags().StringVar(&prefixes, "mac-prefixes", classify.NmapMACPrefixesPath,
		"nmap's MAC prefix table, for vendors the scan did not name")
	return cmd
}

// classifyFiles parses every file first, so a malformed one fails before any output.
func (a *app) classifyFiles(c *classify.Classifier, files []string) error {
	type scan struct {
		file  string
		hosts []classify.Host
	}
	scans := make([]scan, 0, len(files))
	for _, f := range files {
		hosts, err := nmapxml.ParseFile(f)
		if err != nil {
			return err
		}
		scans = append(scans, scan{f, hosts})
	}

	enc := json.NewEncoder(a.stdout)
	for _, s := range scans {
		for i := range s.hosts {
			h := &s.hosts[i]
			if err := enc.Encode(classified(s.file, h, c.Classify(h))); err != nil {
				return err
			}
		}
	}
	return nil
}

func classified(file string, h *classify.Host, r classify.Result) classifiedHost {
	out := classifiedHost{
		File: file, IP: h.IP, MAC: h.MAC, Vendor: r.Vendor, Hostname: h.Hostname,
		Type: string(r.Type), Tier: int(r.Tier), ShouldMonitor: r.ShouldMonitor,
		Strategy: string(r.Strategy), Enrollment: string(r.Enrollment),
		Confidence: r.Confidence, Reasons: r.Reasons, Controls: []string{},
	}
	for _, c := range r.Controls {
		out.Controls = append(out.Controls, c.ID)
	}
	return out
}
