package e2e

import (
	"bufio"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEnrollRefusals runs `ward-agent enroll` with tokens that must not work and checks
// that each is refused with the same message and leaves no certificate behind.
func TestEnrollRefusals(t *testing.T) {
	in := newInstallation(t, interval)
	in.startController()
	in.wardctl("tenant", "create", "clinic-a")

	usedUp := in.token("clinic-a")
	in.enroll("first", usedUp)
	expired := in.token("clinic-a", "--ttl", "1s")
	revoked := in.token("clinic-a")
	in.wardctl("token", "revoke", tokenID(t, in, "clinic-a"))
	wrong := filepath.Join(in.dir, "wrong-token")
	if err := os.WriteFile(wrong, []byte("not-a-real-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	elsewhere := in.token("clinic-a", "--cidr", "192.0.2.0/24")
	time.Sleep(1100 * time.Millisecond) // let the 1s token expire

	cases := []struct{ name, token string }{
		{"wrong", wrong},
		{"expired", expired},
		{"used-up", usedUp},
		{"revoked", revoked},
		{"wrong-address", elsewhere},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := &agent{in: in, name: c.name, state: filepath.Join(in.dir, "refused-"+c.name)}
			out, err := a.enrollCmd(c.token).CombinedOutput()
			if err == nil {
				t.Fatalf("enroll succeeded with a %s token:\n%s", c.name, out)
			}
			if !strings.Contains(string(out), "enrollment refused") {
				t.Errorf("output does not say %q:\n%s", "enrollment refused", out)
			}
			if _, err := os.Stat(filepath.Join(a.state, "cert.pem")); err == nil {
				t.Errorf("a certificate was written for a %s token", c.name)
			}
		})
	}
	if n := len(in.agents("clinic-a")); n != 1 {
		t.Errorf("%d agents enrolled, want only the first", n)
	}
}

// tokenID returns the id of the newest token of tenant.
func tokenID(t *testing.T, in *installation, tenant string) string {
	t.Helper()
	out := in.wardctl("token", "list", "--tenant", tenant)
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Scan() // header
	if !sc.Scan() {
		t.Fatalf("no tokens listed:\n%s", out)
	}
	return strings.Fields(sc.Text())[0]
}

// TestRevokeClosesLiveStream revokes a connected agent with wardctl and checks that its
// stream is gone within five seconds and that it cannot come back.
func TestRevokeClosesLiveStream(t *testing.T) {
	in := newInstallation(t, interval)
	in.startController()
	agents := startFleet(t, in, 2)
	victim, other := agents[0], agents[1]

	revokedAt := time.Now()
	in.wardctl("agent", "revoke", victim.id, "--reason", "e2e test")
	waitFor(t, 5*time.Second, "revoked agent's stream closed", func() bool {
		return metricValue(t, in, `ward_agents_connected{tenant="clinic-a"}`) == 1
	})
	t.Logf("stream closed %v after revocation", time.Since(revokedAt).Round(time.Millisecond))

	// Its reconnections are refused at the handshake: its acked sequence stops moving while
	// the other agent's keeps going.
	frozen := in.agents("clinic-a")[victim.id].AckedSeq
	otherBefore := in.agents("clinic-a")[other.id].AckedSeq
	time.Sleep(10 * interval)
	now := in.agents("clinic-a")
	if now[victim.id].AckedSeq != frozen {
		t.Errorf("revoked agent still delivers: acked %d -> %d", frozen, now[victim.id].AckedSeq)
	}
	if !now[victim.id].Revoked {
		t.Errorf("agent list does not show the agent revoked")
	}
	if now[other.id].AckedSeq <= otherBefore {
		t.Errorf("the other agent stopped delivering: acked %d -> %d",
			otherBefore, now[other.id].AckedSeq)
	}
}

// TestRenewalUnderLiveStream gives agents certificates that live 9 seconds, so that the
// agent renews at about 6 s; the stream must stay up and keep delivering throughout.
func TestRenewalUnderLiveStream(t *testing.T) {
	in := newInstallation(t, interval)
	in.certTTL = 9 * time.Second
	in.startController()
	agents := startFleet(t, in, 1)
	a := agents[0]

	first := readCert(t, a)
	waitFor(t, 20*time.Second, "certificate renewed", func() bool {
		c := readCert(t, a)
		return c != nil && c.SerialNumber.Cmp(first.SerialNumber) != 0
	})
	before := in.agents("clinic-a")[a.id].AckedSeq
	time.Sleep(5 * interval)
	if after := in.agents("clinic-a")[a.id].AckedSeq; after <= before {
		t.Errorf("no delivery after renewal: acked %d -> %d", before, after)
	}

	// Past the first certificate's expiry the agent still delivers on the same stream.
	time.Sleep(time.Until(first.NotAfter) + time.Second)
	before = in.agents("clinic-a")[a.id].AckedSeq
	time.Sleep(5 * interval)
	if after := in.agents("clinic-a")[a.id].AckedSeq; after <= before {
		t.Errorf("no delivery after the first certificate expired: acked %d -> %d",
			before, after)
	}
	if n := len(a.run.logLines("disconnected")); n > 0 {
		t.Errorf("the agent's stream dropped %d times during renewal", n)
	}
}

// readCert returns the agent's current leaf certificate, or nil while it is being replaced.
func readCert(t *testing.T, a *agent) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(a.state, "cert.pem"))
	if err != nil {
		return nil
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil
	}
	return c
}

// TestGrpcurlReflection checks the README's grpcurl promise: an operator lists services by
// reflection and calls the health service, and an agent may not use reflection.
func TestGrpcurlReflection(t *testing.T) {
	grpcurl, err := filepath.Abs("../../bin/tools/grpcurl")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(grpcurl); err != nil {
		t.Skip("bin/tools/grpcurl not built; `make tools` (part of `make test`) builds it")
	}
	in := newInstallation(t, interval)
	in.startController()
	agents := startFleet(t, in, 1)
	ca := filepath.Join(in.data, "ca.pem")
	admin := filepath.Join(in.data, "operators", "admin")

	run := func(args ...string) (string, error) {
		out, err := exec.Command(grpcurl, args...).CombinedOutput()
		return string(out), err
	}
	out, err := run("-cacert", ca, "-cert", filepath.Join(admin, "cert.pem"),
		"-key", filepath.Join(admin, "key.pem"), in.addr, "list")
	if err != nil {
		t.Fatalf("grpcurl list as admin: %v\n%s", err, out)
	}
	for _, svc := range []string{"ward.v1.AdminService", "ward.v1.AgentService",
		"ward.v1.EnrollmentService", "grpc.health.v1.Health"} {
		if !strings.Contains(out, svc) {
			t.Errorf("grpcurl list lacks %s:\n%s", svc, out)
		}
	}

	out, err = run("-cacert", ca, "-cert", filepath.Join(admin, "cert.pem"),
		"-key", filepath.Join(admin, "key.pem"), in.addr, "grpc.health.v1.Health/Check")
	if err != nil || !strings.Contains(out, "SERVING") {
		t.Errorf("health check: %v\n%s", err, out)
	}

	st := agents[0].state
	out, err = run("-cacert", ca, "-cert", filepath.Join(st, "cert.pem"),
		"-key", filepath.Join(st, "key.pem"), in.addr, "list")
	if err == nil {
		t.Errorf("an agent certificate listed services by reflection:\n%s", out)
	}
}

// TestOfflinePastExpiry stops an agent until its certificate has expired: on its next
// start it must stop with an error that tells the operator what to do, not retry forever.
func TestOfflinePastExpiry(t *testing.T) {
	in := newInstallation(t, interval)
	in.certTTL = 3 * time.Second
	in.startController()
	in.wardctl("tenant", "create", "clinic-a")
	a := in.enroll("agent-1", in.token("clinic-a"))

	cert := readCert(t, a)
	time.Sleep(time.Until(cert.NotAfter) + time.Second)

	out, err := exec.Command(filepath.Join(binDir, "ward-agent"), "run",
		"--state-dir", a.state).CombinedOutput()
	if err == nil {
		t.Fatalf("ward-agent run succeeded with an expired certificate:\n%s", out)
	}
	for _, want := range []string{"expired", "wardctl token create", "ward-agent enroll"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error output does not mention %q:\n%s", want, out)
		}
	}
}
