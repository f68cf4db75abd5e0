// Command ward-loadgen measures a Ward controller against a bare mTLS gRPC server that only
// acknowledges, under the same workload.
//
//	ward-loadgen bare --data-dir DIR [--listen ADDR] [--addr-file F]   serve the baseline
//	ward-loadgen run --data-dir DIR --bare ADDR --bare-pid PID
//	    [--controller ADDR --controller-pid PID] [--sizes 1000,5000,10000] ...
//	ward-loadgen devpki --data-dir DIR    write a development installation (no controller)
//
// scripts/bench.sh (make bench) runs all of it; see docs/performance.md for the method.
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

	"github.com/wardsec/ward/pkg/version"
)

const usage = `usage: ward-loadgen <command> [flags]

commands:
  bare     serve the bare baseline AgentService with an installation's controller certificate
  run      measure the controller and the bare server and print the results
  devpki   write a development installation, to measure the bare server without a controller
  version  print the version

Run "ward-loadgen <command> -h" for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ward-loadgen:", err)
		os.Exit(1)
	}
}

// run dispatches to the command named by args[0].
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "bare":
		return runBare(ctx, args[1:], stderr)
	case "run":
		return runLoad(ctx, args[1:], stdout, stderr)
	case "devpki":
		return runDevPKI(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version.Version)
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// newLogger returns a text logger on w at the named level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
