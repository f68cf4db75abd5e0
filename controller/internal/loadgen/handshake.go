package loadgen

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"
)

// http2Preface is the client connection preface followed by an empty SETTINGS frame.
var http2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")

// Handshake opens one connection to the dialer's server with cert (nil: no client
// certificate), completes the TLS handshake and the HTTP/2 preface, waits for the server's
// first frame (which a gRPC server sends only once it has verified the client) and closes
// the connection. It is the cost every agent connection pays before its first RPC.
func (d *Dialer) Handshake(ctx context.Context, cert *tls.Certificate) error {
	var nd net.Dialer
	raw, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}

	conn := tls.Client(raw, d.tlsConfig(cert))
	if err := conn.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if _, err := conn.Write(http2Preface); err != nil {
		return fmt.Errorf("handshake: write preface: %w", err)
	}
	var header [9]byte
	if _, err := io.ReadFull(conn, header[:]); err != nil {
		return fmt.Errorf("handshake: read server settings: %w", err)
	}
	return nil
}

// rate returns n events over d as events per second.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// forEach runs fn(i) for i in [0, n) with up to concurrency calls in flight and returns the
// first error, after which no new calls start.
func forEach(ctx context.Context, n, concurrency int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	idx := make(chan int)
	done := make(chan struct{})
	for range max(concurrency, 1) {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range idx {
				if err := fn(ctx, i); err != nil {
					cancel(err)
				}
			}
		}()
	}

feed:
	for i := range n {
		select {
		case idx <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(idx)
	for range max(concurrency, 1) {
		<-done
	}
	return context.Cause(ctx)
}

// measureHandshakes runs one Handshake per identity with up to concurrency in flight and
// returns the time it took.
func measureHandshakes(ctx context.Context, d *Dialer, ids []Identity,
	concurrency int) (time.Duration, error) {
	start := time.Now()
	err := forEach(ctx, len(ids), concurrency, func(ctx context.Context, i int) error {
		hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return d.Handshake(hctx, &ids[i].Cert)
	})
	if err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
