package agentapi

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/controller/internal/metrics"
	"github.com/wardsec/ward/controller/internal/store"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// TestHelloRolesMustBeAllowed connects agents with stored roles (as their token gave
// them) and Hellos listing roles: a role not allowed ends the stream with
// PermissionDenied naming it, before anything is stored or any observer hears of the
// session, and is counted; an allowed one becomes the session's roles that observers get.
func TestHelloRolesMustBeAllowed(t *testing.T) {
	tests := []struct {
		name      string
		stored    []string // nil: enrolled before roles were stored
		hello     []string
		wantRoles []string // the session's roles when accepted
		refused   string   // the role named in the refusal; "" means accepted
	}{
		{"old agent as host", nil, []string{"host"}, []string{"host"}, ""},
		{"old agent claims collector", nil, []string{"host", "collector"}, nil, "collector"},
		{"host claims collector", []string{"host"}, []string{"collector"}, nil, "collector"},
		{"host claims an unknown role", []string{"host"}, []string{"admin"}, nil, "admin"},
		{"collector", []string{"host", "collector"}, []string{"host", "collector"},
			[]string{"host", "collector"}, ""},
		{"collector alone", []string{"host", "collector"}, []string{"collector"},
			[]string{"collector"}, ""},
		{"collector runs as host", []string{"host", "collector"}, []string{"host"},
			[]string{"host"}, ""},
		{"repeated", []string{"host"}, []string{"host", "host"}, []string{"host"}, ""},
		{"no roles listed", []string{"host"}, nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			m := metrics.New()
			e := newEnv(t, envOptions{cfg: func(c *Config) {
				c.Observer, c.Metrics = rec, m
			}})
			rec.srv = e.srv
			a := e.enrollAgentAs("a1", "clinic-a", tt.stored...)
			s := a.connect(t)

			if tt.refused == "" {
				s.helloAs(tt.hello...)
				if _, err := s.recv(); err != nil { // the observer's command
					t.Fatal(err)
				}
				rec.mu.Lock()
				defer rec.mu.Unlock()
				if len(rec.roles) != 1 || !slices.Equal(rec.roles[0], tt.wantRoles) {
					t.Fatalf("observer roles = %q, want %q", rec.roles, tt.wantRoles)
				}
				return
			}

			s.sendHello(tt.hello...)
			err := s.wantCode(codes.PermissionDenied)
			if msg := status.Convert(err).Message(); !strings.Contains(msg,
				`"`+tt.refused+`"`) {
				t.Errorf("refusal %q does not name the role %q", msg, tt.refused)
			}
			hint := strings.Contains(status.Convert(err).Message(), "wardctl agent roles a1")
			if want := tt.refused == CollectorRole; hint != want {
				t.Errorf("refusal %q: operator's command shown = %v, want %v",
					status.Convert(err).Message(), hint, want)
			}
			if got, _, _ := rec.state(); len(got) != 0 {
				t.Errorf("observer told of a refused session: %v", got)
			}
			stored := getAgent(t, e.store, "a1")
			if stored.Online || !stored.LastSeen.IsZero() || stored.Host.Hostname != "" ||
				!slices.Equal(stored.Roles, tt.stored) {
				t.Errorf("refused hello changed the agent: %+v", stored)
			}
			body := scrape(t, m)
			for _, want := range []string{
				`ward_agent_streams_closed_total{reason="role"} 1`,
				`ward_authz_denied_total{method="/ward.v1.AgentService/Connect"} 1`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
		})
	}
}

// TestCollectorOnlyMessages refuses discovery reports, device poll reports and witness
// signatures from a session without the collector role, also from an agent allowed it
// that did not take it, and stores none of them; a collector's are stored.
func TestCollectorOnlyMessages(t *testing.T) {
	msgs := []struct {
		name string
		m    *wardv1.ConnectRequest
	}{
		{"discovery report", &wardv1.ConnectRequest{Seq: 1,
			Body: &wardv1.ConnectRequest_DiscoveryReport{DiscoveryReport: &wardv1.DiscoveryReport{
				ScanId: "s1", Subnet: "10.0.0.0/24"}}}},
		{"device poll report", &wardv1.ConnectRequest{Seq: 1,
			Body: &wardv1.ConnectRequest_DevicePollReport{
				DevicePollReport: &wardv1.DevicePollReport{Tenant: "clinic-a"}}}},
		{"witness signature", &wardv1.ConnectRequest{Seq: 1,
			Body: &wardv1.ConnectRequest_WitnessSignature{
				WitnessSignature: &wardv1.WitnessSignature{Tenant: "clinic-a", Size: 3}}}},
	}
	sessions := []struct {
		name   string
		stored []string
		hello  []string
		ok     bool
	}{
		{"host", []string{"host"}, []string{"host"}, false},
		{"old agent", nil, []string{"host"}, false},
		{"collector as host", []string{"host", "collector"}, []string{"host"}, false},
		{"collector", []string{"host", "collector"}, []string{"host", "collector"}, true},
	}
	for _, sess := range sessions {
		for _, msg := range msgs {
			t.Run(sess.name+"/"+msg.name, func(t *testing.T) {
				e := newEnv(t, envOptions{})
				a := e.enrollAgentAs("a1", "clinic-a", sess.stored...)
				s := a.connect(t)
				s.helloAs(sess.hello...)
				s.send(msg.m)
				if sess.ok {
					if got := s.ack(); got != 1 {
						t.Fatalf("ack = %d, want 1", got)
					}
					return
				}
				err := s.wantCode(codes.PermissionDenied)
				if !strings.Contains(err.Error(), "only a collector") {
					t.Errorf("refusal %q does not say why", err)
				}
				if n := len(messages(t, e.store, "clinic-a", "a1")); n != 0 {
					t.Fatalf("store holds %d messages, want none", n)
				}
			})
		}
	}
}

// TestResetAgentEndsTheStream ends an open stream with Aborted when the agent's roles
// change, so that its next Hello is checked against them.
func TestResetAgentEndsTheStream(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.enrollAgentAs("a1", "clinic-a", "host", "collector")
	s := a.connect(t)
	s.helloAs("host", "collector")
	e.srv.ResetAgent("a1")
	s.wantCode(codes.Aborted)
	e.srv.ResetAgent("a1") // no stream: nothing to do
}

// scrape returns the metrics in the text format.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	return w.Body.String()
}

// staleRoles is a store whose GetAgent answers with the roles the agent had before an
// operator narrowed them, as a read racing SetAgentRoles would.
type staleRoles struct {
	store.Store
	roles []string
}

func (s staleRoles) GetAgent(ctx context.Context, id string) (store.Agent, error) {
	a, err := s.Store.GetAgent(ctx, id)
	a.Roles = s.roles
	return a, err
}

// TestRolesNarrowedWhileConnecting refuses a Hello that the roles read when the stream
// opened allowed, but the stored roles no longer do when the connection is recorded.
func TestRolesNarrowedWhileConnecting(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *Config) {
		c.Store = staleRoles{Store: c.Store, roles: []string{"host", "collector"}}
	}})
	a := e.enrollAgentAs("a1", "clinic-a", "host")
	s := a.connect(t)
	s.sendHello("host", "collector")
	err := s.wantCode(codes.PermissionDenied)
	if !strings.Contains(status.Convert(err).Message(), `"collector"`) {
		t.Errorf("refusal %v does not name the role", err)
	}
	if got := getAgent(t, e.store, "a1"); got.Online || !got.LastSeen.IsZero() {
		t.Errorf("refused connection recorded: %+v", got)
	}
}

// TestSendForCollectorsOnly refuses to queue a site configuration or a checkpoint for a
// session without the collector role, and queues both for a collector's.
func TestSendForCollectorsOnly(t *testing.T) {
	e := newEnv(t, envOptions{})
	col := e.enrollAgentAs("c1", "clinic-a", "host", "collector")
	host := e.enrollAgentAs("h1", "clinic-a", "host", "collector") // allowed, not taken
	col.connect(t).helloAs("host", "collector")
	host.connect(t).helloAs("host")

	msgs := []*wardv1.ConnectResponse{
		{Body: &wardv1.ConnectResponse_SiteConfig{SiteConfig: &wardv1.SignedPayload{}}},
		{Body: &wardv1.ConnectResponse_Checkpoint{Checkpoint: &wardv1.SignedPayload{}}},
	}
	for _, m := range msgs {
		if err := e.srv.Send("h1", m); !errors.Is(err, ErrNotCollector) {
			t.Errorf("Send %T to a host session = %v, want ErrNotCollector", m.GetBody(), err)
		}
		if err := e.srv.Send("c1", m); err != nil {
			t.Errorf("Send %T to a collector = %v", m.GetBody(), err)
		}
	}
}
