package loadgen

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample", ms(7), 99, 7 * time.Millisecond},
		{"median of odd", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"median of even takes the lower", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 is the max", ms(hundred...), 100, 100 * time.Millisecond},
		{"p99 of 10 is the max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"tiny p is the min", ms(4, 5, 6), 0.001, 4 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestLatenciesSummary(t *testing.T) {
	var l Latencies
	for i := 100; i >= 1; i-- { // out of order on purpose
		l.Add(time.Duration(i) * time.Microsecond)
	}
	s := l.Summary()
	if s.Count != 100 || s.P50 != 50*time.Microsecond || s.P99 != 99*time.Microsecond ||
		s.Max != 100*time.Microsecond {
		t.Errorf("Summary = %+v", s)
	}
}

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    uint64
		wantErr bool
	}{
		{"typical", "Name:\tx\nVmPeak:\t  9 kB\nVmRSS:\t   13312 kB\nThreads:\t5\n", 13312 << 10, false},
		{"missing", "Name:\tx\n", 0, true},
		{"bad unit", "VmRSS:\t12 MB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVmRSS([]byte(tt.status))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseVmRSS = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestRSSOfSelf(t *testing.T) {
	rss, err := RSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 {
		t.Errorf("RSS of the test process = %d bytes, implausibly small", rss)
	}
}

func TestWriteTableVerdicts(t *testing.T) {
	r := &Results{
		EnrollPerSec: 300, HandshakesPerSec: 700,
		Idle: []IdlePoint{
			{Agents: 1000, ControllerBytes: 90 << 10, BareBytes: 60 << 10, ControllerRSS: 1},
			{Agents: 2000, ControllerBytes: 50 << 10, BareBytes: 60 << 10, ControllerRSS: 1,
				ControllerDropped: 1},
			{Agents: 10000, ControllerBytes: 60 << 10, BareBytes: 60 << 10, ControllerRSS: 1},
			{Agents: 20000, ControllerBytes: 65 << 10, BareBytes: 60 << 10, ControllerRSS: 1},
		},
		Controller: Throughput{AcksPerSec: 10000},
		Bare:       Throughput{AcksPerSec: 15000},
	}
	var buf bytes.Buffer
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	want := map[string]string{
		"enrollments/s":        "FAIL", // 0.43 < 0.5
		"idle agent, N=1000 ":  "1.5",  // below the target's fleet size: not judged
		"idle agent, N=2000 ":  "FAIL", // a dropped session fails any size
		"idle agent, N=10000 ": "PASS",
		"idle agent, N=20000 ": "FAIL",
		"heartbeat acks/s":     "PASS", // 0.67
	}
	for key, verdict := range want {
		found := false
		for _, l := range lines {
			if strings.Contains(l, key) {
				found = true
				if !strings.HasSuffix(strings.TrimSpace(l), verdict) {
					t.Errorf("line %q: want verdict %s", l, verdict)
				}
			}
		}
		if !found {
			t.Errorf("no line for %q in\n%s", key, buf.String())
		}
	}
}

// newTestLogger returns a logger writing to t.Log.
func newTestLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startBare runs a bare server of a fresh development installation on loopback and returns
// its installation, issuer and address; it stops when the test ends.
func startBare(t *testing.T) (Installation, *Issuer, string) {
	t.Helper()
	in := Installation{Dir: t.TempDir()}
	iss, err := WriteDevInstallation(in.Dir)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := in.ServerTLS()
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBare(BareConfig{Listener: lis, TLS: tlsCfg, Log: newTestLogger(t),
		HeartbeatInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bare Run: %v", err)
		}
	})
	return in, iss, lis.Addr().String()
}

func TestBareSessionsAndPump(t *testing.T) {
	in, iss, addr := startBare(t)
	roots, err := in.Roots()
	if err != nil {
		t.Fatal(err)
	}
	d := NewDialer(addr, roots)
	ctx := t.Context()

	id, err := iss.Mint("t1", "a1")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Handshake(ctx, &id.Cert); err != nil {
		t.Fatalf("Handshake: %v", err)
	}

	s, err := d.Connect(ctx, id)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if s.interval != time.Second || s.nextSeq != 2 {
		t.Errorf("after setup: interval %v, next seq %d; want 1s, 2", s.interval, s.nextSeq)
	}

	pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	res, err := s.pumpHeartbeats(pctx, 4)
	if err != nil {
		t.Fatalf("pumpHeartbeats: %v", err)
	}
	if res.acked == 0 || len(res.latencies) != res.acked {
		t.Errorf("pumpHeartbeats acked %d with %d latencies", res.acked, len(res.latencies))
	}
}

func TestBareRefusesWithoutClientCert(t *testing.T) {
	in, _, addr := startBare(t)
	roots, err := in.Roots()
	if err != nil {
		t.Fatal(err)
	}
	d := NewDialer(addr, roots)

	// An identity without a certificate: the handshake succeeds (enrollment shares the
	// port), the stream does not.
	if _, err := d.Connect(t.Context(), Identity{ID: "nobody"}); err == nil {
		t.Fatal("Connect without a client certificate succeeded")
	}
}

func TestFleetHeartbeatsAndClose(t *testing.T) {
	in, iss, addr := startBare(t)
	roots, err := in.Roots()
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]Identity, 20)
	for i := range ids {
		if ids[i], err = iss.Mint("t1", "a"+string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}

	f := NewFleet(NewDialer(addr, roots), newTestLogger(t))
	defer f.Close()
	if err := f.Grow(t.Context(), ids, 4); err != nil {
		t.Fatalf("Grow: %v", err)
	}
	if f.Len() != len(ids) {
		t.Fatalf("Len = %d, want %d", f.Len(), len(ids))
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2500*time.Millisecond)
	defer cancel()
	if err := f.Beat(ctx); err != nil {
		t.Fatalf("Beat: %v", err)
	}
	f.mu.Lock()
	for _, is := range f.sessions {
		if is.nextSeq < 3 { // setup sent seq 1; a beat per second since
			t.Errorf("agent %s: next seq %d, want >= 3", is.id.ID, is.nextSeq)
		}
	}
	f.mu.Unlock()

	f.Close()
	if f.Dropped() != 0 {
		t.Errorf("Dropped = %d after a clean close", f.Dropped())
	}
}

func TestBaselineVersion(t *testing.T) {
	spec, err := proto.Marshal(&wardv1.BaselineSpec{BaselineId: "hipaa-v1", Version: "1.2.0"})
	if err != nil {
		t.Fatal(err)
	}
	update := func(payload []byte) *wardv1.ConnectResponse {
		return &wardv1.ConnectResponse{Body: &wardv1.ConnectResponse_BaselineUpdate{
			BaselineUpdate: &wardv1.SignedPayload{Payload: payload}}}
	}
	tests := []struct {
		name   string
		resp   *wardv1.ConnectResponse
		want   string
		wantOK bool
	}{
		{"baseline update", update(spec), "1.2.0", true},
		{"ack", &wardv1.ConnectResponse{Body: &wardv1.ConnectResponse_Ack{
			Ack: &wardv1.Ack{UpToSeq: 3}}}, "", false},
		{"garbage payload", update([]byte{0xff, 0xff}), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := baselineVersion(tt.resp)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("baselineVersion = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestHelloReportsLearntBaseline(t *testing.T) {
	in, iss, addr := startBare(t)
	roots, err := in.Roots()
	if err != nil {
		t.Fatal(err)
	}
	d := NewDialer(addr, roots)
	id, err := iss.Mint("t1", "a1")
	if err != nil {
		t.Fatal(err)
	}

	v, err := d.LearnBaseline(t.Context(), id, 200*time.Millisecond)
	if err != nil || v != "" {
		t.Fatalf("LearnBaseline from the bare server = %q, %v; want none", v, err)
	}

	d.SetBaseline("1.2.0")
	s, err := d.Connect(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.hello().GetHello().GetBaselineVersion(); got != "1.2.0" {
		t.Errorf("Hello reports baseline %q, want 1.2.0", got)
	}
}
