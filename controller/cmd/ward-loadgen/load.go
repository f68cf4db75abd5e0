package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/wardsec/ward/controller/internal/loadgen"
)

// runLoad runs the measurements and prints the results to stdout.
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg loadgen.Config
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Installation.Dir, "data-dir", "", "controller data directory")
	fs.StringVar(&cfg.Controller, "controller", "", "controller address (empty: bare only)")
	fs.IntVar(&cfg.ControllerPID, "controller-pid", 0, "controller process id")
	fs.StringVar(&cfg.Bare, "bare", "", "bare server address")
	fs.IntVar(&cfg.BarePID, "bare-pid", 0, "bare server process id")
	fs.StringVar(&cfg.Tenant, "tenant", "loadgen", "tenant of the enrolled agents")
	sizes := fs.String("sizes", "1000,5000,10000", "idle agent counts to measure memory at")
	fs.IntVar(&cfg.TokenUses, "token-uses", 1000, "enrollments per token (1 to 1000)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, "setups in flight (0: twice the CPUs)")
	fs.IntVar(&cfg.HeartbeatAgents, "hb-agents", 2000, "agents in the heartbeat test")
	fs.IntVar(&cfg.HeartbeatWindow, "hb-window", 8, "unacknowledged heartbeats per agent")
	fs.DurationVar(&cfg.HeartbeatDuration, "hb-duration", 0, "heartbeat test length (0: 10s)")
	fs.DurationVar(&cfg.Settle, "settle", 0, "pause before memory readings (0: 5s)")
	fs.StringVar(&cfg.AgentBinary, "agent-binary", "", "ward-agent binary to measure")
	fs.DurationVar(&cfg.AgentIdle, "agent-idle", 0, "how long ward-agent idles (0: 10s)")
	only := fs.String("only", "", "enroll: measure only enrollments against handshakes")
	output := fs.String("o", "table", "output: table or json")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch *only {
	case "":
	case "enroll":
		cfg.EnrollOnly = true
	default:
		return fmt.Errorf("only: %q is not enroll", *only)
	}
	var err error
	if cfg.Sizes, err = parseSizes(*sizes); err != nil {
		return err
	}
	if cfg.Log, err = newLogger(stderr, *logLevel); err != nil {
		return err
	}

	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return res.WriteTable(stdout)
}

// parseSizes parses a comma-separated list of positive counts.
func parseSizes(s string) ([]int, error) {
	var sizes []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("sizes: %q is not a positive count", f)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// runDevPKI writes a development installation.
func runDevPKI(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devpki", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "directory to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" {
		return fmt.Errorf("devpki: --data-dir is required")
	}
	if _, err := loadgen.WriteDevInstallation(*dataDir); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "development installation written to", *dataDir)
	return nil
}
