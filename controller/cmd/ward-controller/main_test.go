package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/wardsec/ward/pkg/pki"
)

// The test binary doubles as ward-controller when this variable is set, so the tests run
// the real command in its own process without a separate build.
const asMain = "WARD_CONTROLLER_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		os.Args = append([]string{"ward-controller"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func command(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), asMain+"=1")
	return cmd
}

func TestVersion(t *testing.T) {
	out, err := command(t, "version").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("version = %q, %v", out, err)
	}
}

// TestServeRefusesShortRetention: a retention below six years stops serve before it opens
// anything, naming the minimum.
func TestServeRefusesShortRetention(t *testing.T) {
	tests := []struct {
		years string
		want  string
	}{
		{"5", "below the minimum of 6"},
		{"0", "below the minimum of 6"},
		{"-1", "below the minimum of 6"},
	}
	for _, tt := range tests {
		t.Run(tt.years, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			out, err := command(t, "serve", "--data-dir", dir, "--evidence-retention-years",
				tt.years).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tt.want) {
				t.Fatalf("serve with %s years: %v\n%s", tt.years, err, out)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("serve touched the data directory: %v", err)
			}
		})
	}
}

func TestInitServeAndStop(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")

	out, err := command(t, "init", "--data-dir", dir, "--trust-domain", "msp.example",
		"--dns", "ctl.msp.example").CombinedOutput()
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	for _, f := range []string{"ca.pem", "controller/cert.pem", "controller/key.pem",
		"policy/public.pem", "operators/admin/cert.pem", "install.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("init did not write %s: %v", f, err)
		}
	}
	if out, err := command(t, "init", "--data-dir", dir, "--trust-domain", "msp.example").
		CombinedOutput(); err == nil {
		t.Fatalf("a second init over the same directory succeeded:\n%s", out)
	}

	cmd := command(t, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0",
		"--metrics-listen", "127.0.0.1:0", "--log-level", "debug")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	lines := make(chan map[string]any, 100)
	go readJSONLines(t, stderr, lines)
	serving := waitFor(t, lines, "controller serving")
	addr, _ := serving["addr"].(string)
	metricsAddr, _ := serving["metrics_addr"].(string)
	if fi, err := os.Stat(filepath.Join(dir, "evidence-archives")); err != nil ||
		fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Errorf("evidence archive directory: %v, %v", fi, err)
	}

	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get("http://" + metricsAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s = %d", path, resp.StatusCode)
		}
	}

	roots, err := pki.LoadPool(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(
		credentials.NewTLS(pki.ClientConfig(roots, "ctl.msp.example", nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health over the --dns name = %v, %v", hc, err)
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, lines, "controller stopped")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("SIGTERM to exit took %v", d)
	}
}

// readJSONLines sends each line of r, which must be a JSON object, to lines.
func readJSONLines(t *testing.T, r io.Reader, lines chan<- map[string]any) {
	defer close(lines)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			m = map[string]any{"msg": "NOT JSON: " + sc.Text()}
		}
		lines <- m
	}
}

// waitFor returns the first log line with message msg, failing on a non-JSON line.
func waitFor(t *testing.T, lines <-chan map[string]any, msg string) map[string]any {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m, ok := <-lines:
			if !ok {
				t.Fatalf("log ended before %q", msg)
			}
			t.Logf("controller: %v", m)
			if s, _ := m["msg"].(string); strings.HasPrefix(s, "NOT JSON") {
				t.Fatalf("log line is not JSON: %s", s)
			}
			if m["msg"] == msg {
				return m
			}
		case <-timeout:
			t.Fatalf("no %q log line within 20 s", msg)
		}
	}
}
