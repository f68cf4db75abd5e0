package server

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/time/rate"

	"github.com/wardsec/ward/controller/internal/agentapi"
	"github.com/wardsec/ward/controller/internal/evidence"
)

// Defaults for Config's optional fields. The connection limits aim at many idle agents per
// controller: no read buffer of its own (the TLS connection already buffers a record, and
// gRPC's buffer would stay allocated on every idle connection), a write buffer taken from a
// shared pool only while writing, static flow control windows (no BDP pings) and rare
// server pings.
const (
	DefaultListen                = ":7443"
	DefaultMetricsListen         = "127.0.0.1:7090"
	DefaultHeartbeatInterval     = 30 * time.Second
	DefaultCertTTL               = 24 * time.Hour
	DefaultMaxRecvMsgBytes       = 4 << 20
	DefaultMaxConcurrentStreams  = 8
	DefaultReadBufferSize        = -1       // none
	DefaultWriteBufferSize       = 16 << 10 // one TLS record
	DefaultInitialWindowSize     = 64 << 10 // gRPC's minimum; larger costs memory per stream
	DefaultInitialConnWindowSize = 64 << 10
	DefaultKeepaliveTime         = 5 * time.Minute
	DefaultKeepaliveTimeout      = 20 * time.Second
	DefaultKeepaliveMinTime      = 15 * time.Second
	DefaultShutdownTimeout       = 10 * time.Second
	DefaultStoreGCInterval       = 10 * time.Minute
)

// Config configures a Server. DataDir and Log are required; zero values of the other
// fields mean their defaults.
type Config struct {
	// DataDir is the installation made by `ward-controller init`.
	DataDir string
	// Listen is the gRPC address (agents, operators, enrollment); default DefaultListen.
	Listen string
	// MetricsListen is the HTTP address of /metrics, /healthz and /readyz; default
	// DefaultMetricsListen.
	MetricsListen string
	// HeartbeatInterval is what agents are told to use; an agent silent for three
	// intervals is marked offline. Default DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// CertTTL is the lifetime of agent certificates issued at enrollment and renewal;
	// default DefaultCertTTL.
	CertTTL time.Duration

	// MaxRecvMsgBytes is the largest message accepted (ResourceExhausted beyond); agents
	// learn it from Welcome. Default DefaultMaxRecvMsgBytes.
	MaxRecvMsgBytes int
	// MaxConcurrentStreams bounds the streams of one connection; default
	// DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32
	// ReadBufferSize and WriteBufferSize are the per-connection transport buffers;
	// defaults DefaultReadBufferSize and DefaultWriteBufferSize, negative means none.
	ReadBufferSize  int
	WriteBufferSize int
	// InitialWindowSize and InitialConnWindowSize are the HTTP/2 flow control windows per
	// stream and per connection (gRPC ignores values below 64 KiB). Defaults
	// DefaultInitialWindowSize and DefaultInitialConnWindowSize.
	InitialWindowSize     int32
	InitialConnWindowSize int32
	// KeepaliveTime is how long a connection may be idle before the server pings it, and
	// KeepaliveTimeout how long it waits for the answer. Defaults DefaultKeepaliveTime and
	// DefaultKeepaliveTimeout.
	KeepaliveTime    time.Duration
	KeepaliveTimeout time.Duration
	// KeepaliveMinTime is the shortest ping interval a client may use before the server
	// closes its connection; default DefaultKeepaliveMinTime.
	KeepaliveMinTime time.Duration

	// MessageRate and MessageBurst bound each agent's messages; defaults
	// agentapi.DefaultMessageRate and agentapi.DefaultMessageBurst.
	MessageRate  rate.Limit
	MessageBurst int
	// DeviceDownAfter is how many SNMP polls in a row an agentless device may miss
	// before its device-down incident opens; default inventory.DefaultDownAfter.
	DeviceDownAfter int
	// RevocationScan is how often open streams are checked against revocations made
	// elsewhere; default agentapi.DefaultRevocationScan.
	RevocationScan time.Duration
	// ShutdownTimeout bounds the graceful part of shutdown; then remaining calls are cut.
	// Default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// StoreGCInterval is how often the store's value log is garbage collected; default
	// DefaultStoreGCInterval.
	StoreGCInterval time.Duration

	// WebhookURL is where escalated incidents are posted (package escalation); empty
	// posts nothing (incidents still turn escalated). WebhookSecretFile holds the HMAC
	// key shared with the receiver (at least 16 bytes); required with WebhookURL.
	WebhookURL        string
	WebhookSecretFile string

	// CheckpointEvery and CheckpointInterval say how often each tenant's evidence log is
	// checkpointed: every so many records or so long, whichever comes first; zero means
	// the evidence package's defaults (1000 records, 60 s).
	CheckpointEvery    uint64
	CheckpointInterval time.Duration

	// EvidenceRetentionYears is how long evidence records stay in the live log: archived
	// records older than that may be pruned. Zero means evidence.DefaultRetentionYears;
	// less than evidence.MinRetentionYears (six, for HIPAA) is refused.
	EvidenceRetentionYears int

	// Log receives the controller's structured logs. Required.
	Log *slog.Logger
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// withDefaults checks c and returns it with every zero field set to its default.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.DataDir == "":
		return c, errors.New("server: no data directory")
	case c.Log == nil:
		return c, errors.New("server: no logger")
	}
	setInt(&c.EvidenceRetentionYears, evidence.DefaultRetentionYears)
	if err := evidence.CheckRetention(c.EvidenceRetentionYears); err != nil {
		return c, fmt.Errorf("server: %w", err)
	}
	setString(&c.Listen, DefaultListen)
	setString(&c.MetricsListen, DefaultMetricsListen)
	setDuration(&c.HeartbeatInterval, DefaultHeartbeatInterval)
	setDuration(&c.CertTTL, DefaultCertTTL)
	setDuration(&c.KeepaliveTime, DefaultKeepaliveTime)
	setDuration(&c.KeepaliveTimeout, DefaultKeepaliveTimeout)
	setDuration(&c.KeepaliveMinTime, DefaultKeepaliveMinTime)
	setDuration(&c.RevocationScan, agentapi.DefaultRevocationScan)
	setDuration(&c.ShutdownTimeout, DefaultShutdownTimeout)
	setDuration(&c.StoreGCInterval, DefaultStoreGCInterval)
	setInt(&c.MaxRecvMsgBytes, DefaultMaxRecvMsgBytes)
	if c.ReadBufferSize == 0 {
		c.ReadBufferSize = DefaultReadBufferSize
	}
	if c.WriteBufferSize == 0 {
		c.WriteBufferSize = DefaultWriteBufferSize
	}
	setInt(&c.MessageBurst, agentapi.DefaultMessageBurst)
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if c.InitialWindowSize <= 0 {
		c.InitialWindowSize = DefaultInitialWindowSize
	}
	if c.InitialConnWindowSize <= 0 {
		c.InitialConnWindowSize = DefaultInitialConnWindowSize
	}
	if c.MessageRate <= 0 {
		c.MessageRate = agentapi.DefaultMessageRate
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c, nil
}

func setString(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

func setInt(n *int, def int) {
	if *n <= 0 {
		*n = def
	}
}
