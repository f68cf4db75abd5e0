// Command ward-agent is Ward's agent for clinic servers and collector VMs.
//
//	ward-agent enroll --controller ADDR --token-file F --ca-file F --state-dir DIR
//	    [--role host|collector] [--force]
//	ward-agent run --state-dir DIR [--controller ADDR] [--host-root /] [--log-level info]
//	    [--spool-max-bytes 67108864] [--role host|collector] [--allow-shell]
//
// A running agent evaluates its baseline at once when it receives SIGUSR1.
//
//	ward-agent evidence checkpoints --state-dir DIR [-o table|json]
//	ward-agent version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/wardsec/ward/agent/internal/agent"
	"github.com/wardsec/ward/agent/internal/enroll"
	"github.com/wardsec/ward/agent/internal/spool"
	"github.com/wardsec/ward/agent/internal/state"
	"github.com/wardsec/ward/pkg/version"
)

const usage = `usage:
  ward-agent enroll --controller ADDR --token-file F --ca-file F --state-dir DIR [--role host|collector] [--force]
  ward-agent run --state-dir DIR [--controller ADDR] [--host-root /] [--log-level info] [--spool-max-bytes N] [--role host|collector] [--allow-shell]
  ward-agent evidence checkpoints --state-dir DIR [-o table|json]
  ward-agent version
`

// errUsage marks a command line mistake (exit status 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()

	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "ward-agent:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "enroll":
		return runEnroll(ctx, args[1:], stdout, stderr)
	case "run":
		return runAgent(ctx, args[1:], stderr)
	case "evidence":
		return runEvidence(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "ward-agent", version.Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "unknown command %q\n%s", args[0], usage)
	return errUsage
}

func runEnroll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("enroll", flag.ContinueOnError)
	fs.SetOutput(stderr)
	controller := fs.String("controller", "", "controller address, host:port (required)")
	tokenFile := fs.String("token-file", "", "file holding the one-time enrollment token (required)")
	caFile := fs.String("ca-file", "", "PEM bundle the controller's certificate must chain to (required)")
	stateDir := fs.String("state-dir", "", "agent state directory (required)")
	role := fs.String("role", "host", "agent role: host or collector")
	hostRoot := fs.String("host-root", "/", "root of the host file system for host facts")
	force := fs.Bool("force", false, "replace an existing enrollment (deletes its spool)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, map[string]string{"controller": *controller,
		"token-file": *tokenFile, "ca-file": *caFile, "state-dir": *stateDir}); err != nil {
		return err
	}
	if *role != "host" && *role != "collector" {
		fmt.Fprintf(stderr, "--role must be host or collector, not %q\n", *role)
		return errUsage
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}

	info, err := enroll.Run(ctx, enroll.Config{
		Controller: *controller, TokenFile: *tokenFile, CAFile: *caFile,
		Dir: state.Dir(*stateDir), Roles: []string{*role}, Force: *force,
		HostRoot: *hostRoot, Log: log,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "enrolled as %s\n", info.ID())
	return nil
}

func runAgent(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stateDir := fs.String("state-dir", "", "agent state directory (required)")
	controller := fs.String("controller", "", "controller address; overrides agent.json")
	hostRoot := fs.String("host-root", "/", "root of the host file system")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	spoolMax := fs.Int64("spool-max-bytes", spool.DefaultMaxBytes, "bound of the on-disk spool")
	role := fs.String("role", "", "host or collector; overrides the role chosen at enrollment "+
		"(collector: discovery with collector.json in the state directory)")
	allowShell := fs.Bool("allow-shell", false, "let runbooks run arbitrary shell scripts "+
		"(off: only the actions compiled into the agent run)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var roles []string
	switch *role {
	case "":
	case "host", "collector":
		roles = []string{*role}
	default:
		fmt.Fprintf(stderr, "--role must be host or collector, not %q\n", *role)
		return errUsage
	}
	if err := required(fs, map[string]string{"state-dir": *stateDir}); err != nil {
		return err
	}
	if *spoolMax <= 0 {
		fmt.Fprintln(stderr, "--spool-max-bytes must be positive")
		return errUsage
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}

	// SIGUSR1 asks for a baseline evaluation now.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	evaluate := make(chan struct{})
	go forwardSignals(ctx, sigs, evaluate)
	_, gogcSet := os.LookupEnv("GOGC")
	go tuneMemory(ctx, gogcSet)

	return agent.Run(ctx, agent.Config{
		Dir: state.Dir(*stateDir), Controller: *controller, HostRoot: *hostRoot,
		SpoolMaxBytes: *spoolMax, Roles: roles, AllowShell: *allowShell,
		EvaluateNow: evaluate, Log: log,
	})
}

// forwardSignals passes each signal on as a request until ctx ends.
func forwardSignals(ctx context.Context, sigs <-chan os.Signal, out chan<- struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sigs:
		}
		select {
		case out <- struct{}{}:
		case <-ctx.Done():
			return
		}
	}
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		return errUsage
	}
	return nil
}

func required(fs *flag.FlagSet, values map[string]string) error {
	for name, v := range values {
		if v == "" {
			fmt.Fprintf(fs.Output(), "--%s is required\n", name)
			fs.Usage()
			return errUsage
		}
	}
	return nil
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}
