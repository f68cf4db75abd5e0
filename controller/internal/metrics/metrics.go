// Package metrics holds the controller's Prometheus series in a private registry and serves
// them over HTTP. Every method of *Metrics is safe for concurrent use and does nothing on a
// nil receiver, so components can be built and tested without metrics.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the controller's set of series. Create it with New.
type Metrics struct {
	registry *prometheus.Registry

	connected    *prometheus.GaugeVec     // by tenant
	messages     *prometheus.CounterVec   // by message type
	enrollments  prometheus.Counter       // successful enrollments
	refusals     *prometheus.CounterVec   // enrollment refusals by reason
	authzDenied  *prometheus.CounterVec   // authorisation failures by method
	storeLatency *prometheus.HistogramVec // store operation latency by operation
	streamClosed *prometheus.CounterVec   // agent streams ended by the controller, by reason
	pollsIgnored prometheus.Counter       // device polls of devices not given to the collector
}

// New returns a Metrics registered in a new private registry that also carries the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ward_agents_connected",
			Help: "Agents with an open stream to this controller, by tenant.",
		}, []string{"tenant"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ward_agent_messages_total",
			Help: "Agent messages received, by message type.",
		}, []string{"type"}),
		enrollments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ward_enrollments_total",
			Help: "Agents enrolled.",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ward_enrollment_refusals_total",
			Help: "Enrollments refused, by reason.",
		}, []string{"reason"}),
		authzDenied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ward_authz_denied_total",
			Help: "Calls refused by authorisation, by gRPC method.",
		}, []string{"method"}),
		storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ward_store_latency_seconds",
			Help:    "Latency of store operations, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9), // 100µs .. 6.5s
		}, []string{"op"}),
		streamClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ward_agent_streams_closed_total",
			Help: "Agent streams closed by the controller, by reason.",
		}, []string{"reason"}),
		pollsIgnored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ward_device_polls_ignored_total",
			Help: "Device polls ignored: the device was not given to the collector to poll.",
		}),
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.connected, m.messages, m.enrollments, m.refusals, m.authzDenied,
		m.storeLatency, m.streamClosed, m.pollsIgnored,
	)
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Registry returns the private registry, for tests and further collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// AgentConnected counts an agent stream of tenant as open.
func (m *Metrics) AgentConnected(tenant string) {
	if m != nil {
		m.connected.WithLabelValues(tenant).Inc()
	}
}

// AgentDisconnected counts an agent stream of tenant as closed.
func (m *Metrics) AgentDisconnected(tenant string) {
	if m != nil {
		m.connected.WithLabelValues(tenant).Dec()
	}
}

// Message counts one agent message of type typ ("heartbeat", "drift_report", ...).
func (m *Metrics) Message(typ string) {
	if m != nil {
		m.messages.WithLabelValues(typ).Inc()
	}
}

// Enrolled counts one successful enrollment.
func (m *Metrics) Enrolled() {
	if m != nil {
		m.enrollments.Inc()
	}
}

// EnrollRefused counts one refused enrollment. reason is a short fixed word ("token",
// "csr", "host", "rate"), never caller input.
func (m *Metrics) EnrollRefused(reason string) {
	if m != nil {
		m.refusals.WithLabelValues(reason).Inc()
	}
}

// AuthzDenied counts one call refused by authorisation. Its signature fits authz.New's
// onDenied callback; reason is not a label, to keep cardinality bounded.
func (m *Metrics) AuthzDenied(method, reason string) {
	if m != nil {
		m.authzDenied.WithLabelValues(method).Inc()
	}
}

// StreamClosed counts one agent stream that the controller ended, by a short fixed reason
// ("replaced", "revoked", "invalid", "rate", "permission").
func (m *Metrics) StreamClosed(reason string) {
	if m != nil {
		m.streamClosed.WithLabelValues(reason).Inc()
	}
}

// PollsIgnored counts n device polls ignored because their device was not given to the
// collector that sent them to poll.
func (m *Metrics) PollsIgnored(n int) {
	if m != nil && n > 0 {
		m.pollsIgnored.Add(float64(n))
	}
}

// ObserveStore records that the store operation op took d.
func (m *Metrics) ObserveStore(op string, d time.Duration) {
	if m != nil {
		m.storeLatency.WithLabelValues(op).Observe(d.Seconds())
	}
}
