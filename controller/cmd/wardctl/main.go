// Command wardctl is the operator's command line for a Ward controller. It speaks the
// AdminService over mutual TLS with an operator certificate:
//
//	wardctl [--controller ADDR --cert F --key F --ca F] [-o table|json] <noun> <verb> ...
//
// The connection flags fall back to WARD_CONTROLLER, WARD_CERT, WARD_KEY and WARD_CA.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run executes one wardctl command line and returns the exit status. Everything a command
// prints goes to stdout; errors go to stderr as "wardctl: ...".
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdout: stdout, getenv: getenv}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, "wardctl: "+describe(err))
		return 1
	}
	return 0
}

// DefaultController is the address used when neither --controller nor WARD_CONTROLLER
// is set.
const DefaultController = "localhost:7443"

// app holds the global options and the output.
type app struct {
	stdout io.Writer
	getenv func(string) string

	controller, cert, key, ca string
	output                    string
	timeout                   time.Duration
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "wardctl",
		Short:         "Operate a Ward controller: tenants, enrollment tokens, agents, operators",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.resolve()
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&a.controller, "controller", "", "controller address host:port "+
		"(env WARD_CONTROLLER, default "+DefaultController+")")
	f.StringVar(&a.cert, "cert", "", "operator certificate PEM file (env WARD_CERT)")
	f.StringVar(&a.key, "key", "", "operator private key PEM file (env WARD_KEY)")
	f.StringVar(&a.ca, "ca", "", "trust bundle PEM file (env WARD_CA)")
	f.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	f.DurationVar(&a.timeout, "timeout", 15*time.Second, "deadline for each call")

	root.AddCommand(a.tenantCommand(), a.tokenCommand(), a.agentCommand(),
		a.operatorCommand())
	root.AddCommand(a.evidenceCommand())
	root.AddCommand(a.baselineCommand(), a.checkCommand(), a.incidentCommand(),
		a.runbookCommand())
	root.AddCommand(a.classifyCommand())
	root.AddCommand(a.deviceCommand(), a.discoveryCommand(), a.siteCommand())
	return root
}

// resolve fills unset flags from the environment and checks them.
func (a *app) resolve() error {
	fill := func(v *string, env, def string) {
		if *v == "" {
			*v = a.getenv(env)
		}
		if *v == "" {
			*v = def
		}
	}
	fill(&a.controller, "WARD_CONTROLLER", DefaultController)
	fill(&a.cert, "WARD_CERT", "")
	fill(&a.key, "WARD_KEY", "")
	fill(&a.ca, "WARD_CA", "")
	switch {
	case a.output != "table" && a.output != "json":
		return fmt.Errorf("--output %q: want table or json", a.output)
	case a.timeout <= 0:
		return errors.New("--timeout must be positive")
	}
	return nil
}

// call dials the controller, runs fn with an AdminService client under the timeout, and
// closes the connection.
func (a *app) call(fn func(context.Context, wardv1.AdminServiceClient) error) error {
	if a.cert == "" || a.key == "" || a.ca == "" {
		return errors.New("no operator credentials: set --cert, --key and --ca " +
			"(or WARD_CERT, WARD_KEY and WARD_CA)")
	}
	pair, err := pki.LoadKeyPair(a.cert, a.key)
	if err != nil {
		return err
	}
	roots, err := pki.LoadPool(a.ca)
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(a.controller)
	if err != nil {
		return fmt.Errorf("--controller %q: want host:port", a.controller)
	}
	cfg := pki.ClientConfig(roots, host, func() (*tls.Certificate, error) { return &pair, nil })
	conn, err := grpc.NewClient(a.controller, grpc.WithTransportCredentials(
		credentials.NewTLS(cfg)))
	if err != nil {
		return fmt.Errorf("connect %s: %w", a.controller, err)
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	return fn(ctx, wardv1.NewAdminServiceClient(conn))
}

// describe turns an error into the one line wardctl prints: a gRPC status becomes
// "<code in words>: <message>", anything else its text.
func describe(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	words := codeWords(st.Code().String())
	if strings.HasPrefix(st.Message(), words) {
		return st.Message()
	}
	return words + ": " + st.Message()
}

// codeWords turns "PermissionDenied" into "permission denied".
func codeWords(camel string) string {
	var b strings.Builder
	for i, r := range camel {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte(' ')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
