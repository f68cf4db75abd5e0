package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"google.golang.org/grpc"

	"github.com/wardsec/ward/controller/internal/loadgen"
	"github.com/wardsec/ward/pkg/pki"
)

// runBare serves the bare baseline until ctx ends.
func runBare(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("bare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "controller data directory (certificates only)")
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	addrFile := fs.String("addr-file", "", "write the bound address to this file")
	interval := fs.Duration("heartbeat-interval", 30*time.Second, "interval announced in Welcome")
	readBuf := fs.Int("read-buffer", -1, "gRPC read buffer bytes (-1: gRPC default, 0: none)")
	writeBuf := fs.Int("write-buffer", -1, "gRPC write buffer bytes (-1: gRPC default, 0: none)")
	window := fs.Int("window", 0, "static stream and connection window bytes (0: gRPC default)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	debugAddr := fs.String("debug-listen", "", "serve net/http/pprof here (loopback only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" {
		return fmt.Errorf("bare: --data-dir is required")
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}

	tlsCfg, err := loadgen.Installation{Dir: *dataDir}.ServerTLS()
	if err != nil {
		return err
	}
	var opts []grpc.ServerOption
	if *readBuf >= 0 {
		opts = append(opts, grpc.ReadBufferSize(*readBuf))
	}
	if *writeBuf >= 0 {
		opts = append(opts, grpc.WriteBufferSize(*writeBuf))
	}
	if *window > 0 {
		opts = append(opts, grpc.StaticStreamWindowSize(int32(*window)),
			grpc.StaticConnWindowSize(int32(*window)))
	}

	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("bare: %w", err)
	}
	srv, err := loadgen.NewBare(loadgen.BareConfig{Listener: lis, TLS: tlsCfg, Options: opts,
		HeartbeatInterval: *interval, Log: log})
	if err != nil {
		lis.Close()
		return err
	}
	if *addrFile != "" {
		err := pki.WriteFile(*addrFile, []byte(lis.Addr().String()+"\n"), pki.PublicMode)
		if err != nil {
			lis.Close()
			return err
		}
	}
	if *debugAddr != "" {
		stop, err := serveDebug(*debugAddr, log)
		if err != nil {
			lis.Close()
			return err
		}
		defer stop()
	}
	return srv.Run(ctx)
}
