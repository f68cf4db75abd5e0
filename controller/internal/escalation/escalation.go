// Package escalation delivers escalated incidents to a webhook: an HTTP POST of a JSON
// document with the incident, the host, what was tried and the evidence references,
// signed with HMAC-SHA256 so that the receiver can trust it, and retried with capped
// exponential backoff until the receiver answers 2xx or the attempts run out.
//
// The receiver checks the signature with Verify: the header SignatureHeader carries
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>", so that a captured request
// cannot be replayed with another timestamp.
//
// Known limitation: the delivery queue lives in memory; escalations not delivered when the
// controller stops are not retried after it restarts (the incident stays escalated in the
// store and is listed by wardctl incident list).
package escalation

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wardsec/ward/controller/internal/remediation"
	"github.com/wardsec/ward/pkg/logkey"
)

// Headers of a delivery.
const (
	SignatureHeader = "X-Ward-Signature"
	DeliveryHeader  = "X-Ward-Delivery" // unique per escalation, the same across retries
	EventHeader     = "X-Ward-Event"    // "incident.escalated"
)

// Defaults for Config's optional fields.
const (
	DefaultAttempts       = 8
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultTimeout        = 10 * time.Second
	DefaultQueue          = 1024
)

// Config configures a Notifier.
type Config struct {
	URL    string // required: the webhook's address
	Secret []byte // required: the HMAC key shared with the receiver; never logged

	Attempts       int           // per escalation; default DefaultAttempts
	InitialBackoff time.Duration // first wait; doubled per attempt; default 1 s
	MaxBackoff     time.Duration // cap of the wait; default 5 min
	Timeout        time.Duration // per request; default 10 s
	Queue          int           // escalations waiting for delivery; default 1024
	Client         *http.Client  // nil: a client with Timeout

	Log   *slog.Logger     // required
	Clock func() time.Time // nil: time.Now
}

// Notifier delivers escalations. Escalate queues (never blocks); Run delivers. It is
// safe for concurrent use and implements remediation.Escalator.
type Notifier struct {
	cfg   Config
	log   *slog.Logger
	clock func() time.Time
	queue chan Document

	wg sync.WaitGroup // deliveries in flight
}

var _ remediation.Escalator = (*Notifier)(nil)

// New checks cfg and returns a Notifier.
func New(cfg Config) (*Notifier, error) {
	switch {
	case cfg.URL == "":
		return nil, errors.New("escalation: no webhook URL")
	case !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://"):
		return nil, errors.New("escalation: webhook URL must be http(s)")
	case len(cfg.Secret) < 16:
		return nil, errors.New("escalation: webhook secret shorter than 16 bytes")
	case cfg.Log == nil:
		return nil, errors.New("escalation: no logger")
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	setDefault(&cfg.InitialBackoff, DefaultInitialBackoff)
	setDefault(&cfg.MaxBackoff, DefaultMaxBackoff)
	setDefault(&cfg.Timeout, DefaultTimeout)
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Notifier{cfg: cfg, log: cfg.Log, clock: cfg.Clock,
		queue: make(chan Document, cfg.Queue)}, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Escalate queues e for delivery. When the queue is full the escalation is dropped and
// logged at error level.
func (n *Notifier) Escalate(_ context.Context, e remediation.Escalation) {
	doc := documentOf(e, n.clock())
	select {
	case n.queue <- doc:
	default:
		n.log.Error("escalation dropped: queue full", "incident", doc.Incident.ID)
	}
}

// Run delivers queued escalations, each in its own goroutine with its retries, until
// ctx ends; then it waits for deliveries in flight (which stop retrying) and returns nil.
func (n *Notifier) Run(ctx context.Context) error {
	defer n.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case doc := <-n.queue:
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				if err := n.Deliver(ctx, doc); err != nil && ctx.Err() == nil {
					n.log.Error("escalation not delivered", "incident", doc.Incident.ID,
						logkey.Error, err)
				}
			}()
		}
	}
}

// Deliver posts doc, retrying with backoff until a 2xx answer, the attempts run out or
// ctx ends.
func (n *Notifier) Deliver(ctx context.Context, doc Document) error {
	body, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("escalation: encode: %w", err)
	}
	backoff := n.cfg.InitialBackoff
	var last error
	for attempt := 1; attempt <= n.cfg.Attempts; attempt++ {
		last = n.post(ctx, doc.DeliveryID, body)
		if last == nil {
			n.log.Info("escalation delivered", "incident", doc.Incident.ID,
				logkey.Attempt, attempt)
			return nil
		}
		if attempt == n.cfg.Attempts {
			break
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		n.log.Warn("escalation delivery failed", "incident", doc.Incident.ID,
			logkey.Attempt, attempt, logkey.Backoff, wait, logkey.Error, last)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(backoff*2, n.cfg.MaxBackoff)
	}
	return fmt.Errorf("escalation: %d attempts: %w", n.cfg.Attempts, last)
}

// post sends one request.
func (n *Notifier) post(ctx context.Context, delivery string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.URL,
		bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(DeliveryHeader, delivery)
	req.Header.Set(EventHeader, "incident.escalated")
	req.Header.Set(SignatureHeader, Sign(n.cfg.Secret, n.clock(), body))

	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// Sign returns the signature header value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte("."))
	h.Write(body)
	return h.Sum(nil)
}

// Errors of Verify.
var (
	ErrBadSignature = errors.New("escalation: bad signature")
	ErrStale        = errors.New("escalation: signature too old or from the future")
)

// Verify checks header (the SignatureHeader value) against body with secret, and that
// its timestamp is within tolerance of now. It is what a receiver runs.
func Verify(secret []byte, header string, body []byte, now time.Time,
	tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	got, err := hex.DecodeString(sig)
	if ts == "" || err != nil || !hmac.Equal(got, mac(secret, ts, body)) {
		return ErrBadSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	return nil
}
