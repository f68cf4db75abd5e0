package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHandlerServesSeries(t *testing.T) {
	m := New()
	m.AgentConnected("clinic-a")
	m.AgentConnected("clinic-a")
	m.AgentDisconnected("clinic-a")
	m.Message("heartbeat")
	m.Enrolled()
	m.EnrollRefused("token")
	m.AuthzDenied("/ward.v1.AdminService/ListAgents", "agent certificate")
	m.ObserveStore("commit_message", 3*time.Millisecond)
	m.StreamClosed("revoked")

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}

	for _, want := range []string{
		`ward_agents_connected{tenant="clinic-a"} 1`,
		`ward_agent_messages_total{type="heartbeat"} 1`,
		`ward_enrollments_total 1`,
		`ward_enrollment_refusals_total{reason="token"} 1`,
		`ward_authz_denied_total{method="/ward.v1.AdminService/ListAgents"} 1`,
		`ward_store_latency_seconds_count{op="commit_message"} 1`,
		`ward_agent_streams_closed_total{reason="revoked"} 1`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestNilMetricsIsSafe(t *testing.T) {
	var m *Metrics
	m.AgentConnected("t")
	m.AgentDisconnected("t")
	m.Message("heartbeat")
	m.Enrolled()
	m.EnrollRefused("token")
	m.AuthzDenied("m", "r")
	m.ObserveStore("op", time.Second)
	m.StreamClosed("rate")
}
