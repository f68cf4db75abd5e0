// Command ward-controller runs the Ward controller.
//
//	ward-controller init --data-dir DIR --trust-domain DOMAIN [--dns NAME ...] [--name NAME]
//	ward-controller serve --data-dir DIR [--listen ADDR] [--metrics-listen ADDR]
//	    [--heartbeat-interval 30s] [--cert-ttl 24h] [--device-down-after 3] [--log-level info]
//	    [--webhook-url URL --webhook-secret-file F] [--debug-listen 127.0.0.1:PORT]
//	    [--evidence-retention-years 6]
//	ward-controller version
//
// Logs are JSON lines on standard error. serve stops gracefully on SIGTERM or SIGINT.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wardsec/ward/controller/internal/agentapi"
	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/install"
	"github.com/wardsec/ward/controller/internal/inventory"
	"github.com/wardsec/ward/controller/internal/memrelease"
	"github.com/wardsec/ward/controller/internal/server"
	"github.com/wardsec/ward/pkg/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ward-controller:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	var logLevel slog.Level
	root := &cobra.Command{
		Use:           "ward-controller",
		Short:         "The Ward controller: agents, enrollment, admin API",
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().Var(levelFlag{&logLevel}, "log-level",
		"log level: debug, info, warn or error")
	logger := func() *slog.Logger {
		return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))
	}
	root.AddCommand(newInitCommand(logger), newServeCommand(logger), newMessagesCommand(logger),
		newVersionCommand())
	return root
}

func newInitCommand(logger func() *slog.Logger) *cobra.Command {
	var o install.Options
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create an installation: CA, serving certificate, policy key, store, admin",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Log = logger()
			return install.Init(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", "", "data directory to create (required)")
	f.StringVar(&o.TrustDomain, "trust-domain", "", "trust domain, e.g. msp.example (required)")
	f.StringSliceVar(&o.DNSNames, "dns", nil, "extra DNS name for the serving certificate")
	f.StringVar(&o.Name, "name", install.DefaultName, "controller name in its identity")
	cmd.MarkFlagRequired("data-dir")
	cmd.MarkFlagRequired("trust-domain")
	return cmd
}

// defaultGCPercent is Go's own default. A lower value keeps a busy controller's heap
// closer to what is live at the cost of more collections (at 50, the heartbeat benchmark
// spent about 17% of the controller's CPU collecting, at 100 about 7%); an idle
// controller's surplus is returned by memrelease either way.
const defaultGCPercent = 100

func newServeCommand(logger func() *slog.Logger) *cobra.Command {
	var cfg server.Config
	var gcPercent int
	var debugListen string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve agents and operators until SIGTERM or SIGINT",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := evidence.CheckRetention(cfg.EvidenceRetentionYears); err != nil {
				return fmt.Errorf("--evidence-retention-years: %w", err)
			}
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(gcPercent)
			}
			cfg.Log = logger()
			mctx, stopRelease := context.WithCancel(cmd.Context())
			defer stopRelease()
			go memrelease.Run(mctx, memrelease.Config{Log: cfg.Log})
			if debugListen != "" {
				stop, err := serveDebug(debugListen, cfg.Log)
				if err != nil {
					return err
				}
				defer stop()
			}
			srv, err := server.New(cfg)
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", "", "data directory made by init (required)")
	f.StringVar(&cfg.Listen, "listen", server.DefaultListen, "gRPC listen address")
	f.StringVar(&cfg.MetricsListen, "metrics-listen", server.DefaultMetricsListen,
		"HTTP address of /metrics, /healthz and /readyz")
	f.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval",
		server.DefaultHeartbeatInterval, "heartbeat interval agents are told to use")
	f.DurationVar(&cfg.CertTTL, "cert-ttl", server.DefaultCertTTL,
		"lifetime of agent certificates")
	f.IntVar(&cfg.DeviceDownAfter, "device-down-after", inventory.DefaultDownAfter,
		"SNMP polls in a row an agentless device may miss before an incident opens")
	f.StringVar(&cfg.WebhookURL, "webhook-url", "",
		"where escalated incidents are posted (HMAC-signed JSON); empty: none")
	f.StringVar(&cfg.WebhookSecretFile, "webhook-secret-file", "",
		"file holding the webhook's HMAC key (at least 16 bytes); required with --webhook-url")
	addTuningFlags(f, &cfg)
	f.IntVar(&gcPercent, "gc-percent", defaultGCPercent,
		"garbage collection target percentage, unless GOGC is set")
	f.StringVar(&debugListen, "debug-listen", "",
		"loopback address to serve net/http/pprof on, for profiling; empty: none")
	f.IntVar(&cfg.EvidenceRetentionYears, "evidence-retention-years",
		evidence.DefaultRetentionYears, "years archived evidence records stay in the live "+
			"log before they may be pruned (at least 6)")
	cmd.MarkFlagRequired("data-dir")
	return cmd
}

// addTuningFlags adds the connection and rate limits, for measurements and large fleets.
func addTuningFlags(f *pflag.FlagSet, cfg *server.Config) {
	f.IntVar(&cfg.MaxRecvMsgBytes, "max-message-bytes", server.DefaultMaxRecvMsgBytes,
		"largest message accepted from a client")
	f.Uint32Var(&cfg.MaxConcurrentStreams, "max-concurrent-streams",
		server.DefaultMaxConcurrentStreams, "streams allowed per connection")
	f.IntVar(&cfg.ReadBufferSize, "read-buffer-size", server.DefaultReadBufferSize,
		"transport read buffer per connection, bytes (negative: none)")
	f.IntVar(&cfg.WriteBufferSize, "write-buffer-size", server.DefaultWriteBufferSize,
		"transport write buffer per connection, bytes (negative: none)")
	f.Int32Var(&cfg.InitialWindowSize, "initial-window-size", server.DefaultInitialWindowSize,
		"HTTP/2 flow control window per stream, bytes")
	f.Int32Var(&cfg.InitialConnWindowSize, "initial-conn-window-size",
		server.DefaultInitialConnWindowSize, "HTTP/2 flow control window per connection, bytes")
	f.DurationVar(&cfg.KeepaliveTime, "keepalive-time", server.DefaultKeepaliveTime,
		"idle time before the server pings a connection")
	f.DurationVar(&cfg.KeepaliveTimeout, "keepalive-timeout", server.DefaultKeepaliveTimeout,
		"how long the server waits for a ping answer")
	f.DurationVar(&cfg.KeepaliveMinTime, "keepalive-min-time", server.DefaultKeepaliveMinTime,
		"shortest client ping interval tolerated")
	f.Float64Var((*float64)(&cfg.MessageRate), "message-rate",
		float64(agentapi.DefaultMessageRate), "messages per second allowed per agent")
	f.IntVar(&cfg.MessageBurst, "message-burst", agentapi.DefaultMessageBurst,
		"messages an agent may send at once above the rate")
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), version.Version)
		},
	}
}

// levelFlag is a pflag.Value for a slog.Level.
type levelFlag struct{ l *slog.Level }

func (f levelFlag) String() string {
	if f.l == nil {
		return "info"
	}
	return f.l.String()
}

func (f levelFlag) Set(s string) error { return f.l.UnmarshalText([]byte(s)) }

func (levelFlag) Type() string { return "level" }
