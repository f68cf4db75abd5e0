// Package escalation delivers escalated incidents to a webhook: an HTTP POST of a JSON
// document with the incident, the host, what was tried and the evidence references,
// signed with HMAC-SHA256 so that the receiver can trust it, and retried with capped
// exponential backoff until the receiver answers 2xx or the attempts run out.
//
// The receiver checks the signature with Verify: the header SignatureHeader carries
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>", so that a captured request
// cannot be replayed with another timestamp.
//
// Pending deliveries are kept in the store (Config.Store) from the moment the incident is
// escalated until the receiver accepts them or the attempts run out, with the attempts
// made and the time of the next one: a controller that stops or crashes picks them up
// where they were when it runs again.
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
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wardsec/ward/controller/internal/remediation"
	"github.com/wardsec/ward/controller/internal/store"
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
	DefaultRescan         = time.Minute
)

// Config configures a Notifier.
type Config struct {
	URL    string // required: the webhook's address; never logged (it may hold a token)
	Secret []byte // required: the HMAC key shared with the receiver; never logged

	// Store keeps pending deliveries across restarts; nil keeps them in memory only.
	Store store.Escalations

	Attempts       int           // per escalation; default DefaultAttempts
	InitialBackoff time.Duration // first wait; doubled per attempt; default 1 s
	MaxBackoff     time.Duration // cap of the wait; default 5 min
	Timeout        time.Duration // per request; default 10 s
	Queue          int           // escalations waiting to start; default 1024
	// Rescan is how often Run looks in the store for deliveries it has not started (the
	// queue overflowed); default DefaultRescan.
	Rescan time.Duration
	Client *http.Client // nil: a client with Timeout

	Log   *slog.Logger     // required
	Clock func() time.Time // nil: time.Now
}

// Notifier delivers escalations. Escalate keeps and queues (never blocks); Run delivers.
// It is safe for concurrent use and implements remediation.Escalator.
type Notifier struct {
	cfg   Config
	log   *slog.Logger
	clock func() time.Time
	queue chan store.PendingEscalation

	mu       sync.Mutex      // guards inflight
	inflight map[string]bool // delivery ids being delivered by Run

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
	setDefault(&cfg.Rescan, DefaultRescan)
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
		queue: make(chan store.PendingEscalation, cfg.Queue), inflight: map[string]bool{}}, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Escalate keeps e for delivery (in the store, when there is one) and queues it. It
// returns an error when the store could not keep it, or, without a store, when the queue
// is full. With a store, an escalation that finds the queue full is started by Run's
// next rescan.
func (n *Notifier) Escalate(ctx context.Context, e remediation.Escalation) error {
	now := n.clock()
	doc := documentOf(e, now)
	body, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("escalation: encode: %w", err)
	}
	p := store.PendingEscalation{ID: doc.DeliveryID, Tenant: doc.Incident.Tenant,
		Incident: doc.Incident.ID, Body: body, NextAt: now, CreatedAt: now}
	if n.cfg.Store != nil {
		if err := n.cfg.Store.PutEscalation(ctx, p); err != nil {
			return fmt.Errorf("escalation: keep for delivery: %w", err)
		}
	}
	select {
	case n.queue <- p:
		return nil
	default:
	}
	if n.cfg.Store != nil {
		n.log.Warn("escalation queue full; delivery starts at the next rescan",
			"incident", p.Incident, "delivery", p.ID)
		return nil
	}
	n.log.Error("escalation dropped: queue full", "incident", p.Incident)
	return errors.New("escalation: delivery queue full")
}

// Run delivers the escalations kept in the store (those a previous run left, first) and
// those queued, each in its own goroutine with its retries, until ctx ends; then it waits
// for deliveries in flight, which stop where they are (kept in the store for the next
// run), and returns nil.
func (n *Notifier) Run(ctx context.Context) error {
	defer n.wg.Wait()
	n.resume(ctx)
	rescan := time.NewTicker(n.cfg.Rescan)
	defer rescan.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-n.queue:
			n.start(ctx, p)
		case <-rescan.C:
			n.resume(ctx)
		}
	}
}

// resume starts the deliveries kept in the store that are not under way.
func (n *Notifier) resume(ctx context.Context) {
	if n.cfg.Store == nil {
		return
	}
	pending, err := n.cfg.Store.ListEscalations(ctx)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Error("read pending escalations", logkey.Error, err)
		}
		return
	}
	for _, p := range pending {
		n.start(ctx, p)
	}
}

// start delivers p in its own goroutine unless it is under way already.
func (n *Notifier) start(ctx context.Context, p store.PendingEscalation) {
	n.mu.Lock()
	if n.inflight[p.ID] {
		n.mu.Unlock()
		return
	}
	n.inflight[p.ID] = true
	n.mu.Unlock()

	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer func() {
			n.mu.Lock()
			delete(n.inflight, p.ID)
			n.mu.Unlock()
		}()
		if err := n.deliver(ctx, p); err != nil && ctx.Err() == nil {
			n.log.Error("escalation not delivered", "incident", p.Incident,
				"delivery", p.ID, logkey.Error, err)
		}
	}()
}

// Deliver posts doc now, outside the queue, retrying with backoff until a 2xx answer, the
// attempts run out or ctx ends.
func (n *Notifier) Deliver(ctx context.Context, doc Document) error {
	body, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("escalation: encode: %w", err)
	}
	return n.deliver(ctx, store.PendingEscalation{ID: doc.DeliveryID,
		Tenant: doc.Incident.Tenant, Incident: doc.Incident.ID, Body: body,
		NextAt: n.clock()})
}

// deliver makes p's remaining attempts, each not before p.NextAt, and keeps p's progress
// in the store after each failure; it removes p from the store once delivered or given
// up. When ctx ends it returns ctx's error and leaves p in the store as it is.
func (n *Notifier) deliver(ctx context.Context, p store.PendingEscalation) error {
	for p.Attempts < n.cfg.Attempts {
		if wait := p.NextAt.Sub(n.clock()); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		err := n.post(ctx, p.ID, p.Body)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.Attempts++
		if err == nil {
			n.log.Info("escalation delivered", "incident", p.Incident, "delivery", p.ID,
				logkey.Attempt, p.Attempts)
			n.forget(p)
			return nil
		}
		p.LastError = err.Error()
		if p.Attempts >= n.cfg.Attempts {
			break
		}
		wait := n.backoff(p.Attempts)
		p.NextAt = n.clock().Add(wait)
		n.log.Warn("escalation delivery failed", "incident", p.Incident, "delivery", p.ID,
			logkey.Attempt, p.Attempts, logkey.Backoff, wait, logkey.Error, err)
		if n.cfg.Store != nil {
			if err := n.cfg.Store.PutEscalation(ctx, p); err != nil && ctx.Err() == nil {
				n.log.Warn("keep escalation progress", "delivery", p.ID, logkey.Error, err)
			}
		}
	}
	n.forget(p)
	return fmt.Errorf("escalation: %d attempts: %s", p.Attempts, p.LastError)
}

// backoff is the wait after the attempt-th failed attempt: InitialBackoff doubled per
// attempt, capped at MaxBackoff, with the lower half randomized.
func (n *Notifier) backoff(attempt int) time.Duration {
	d := n.cfg.InitialBackoff
	for i := 1; i < attempt && d < n.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.cfg.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// forget removes p from the store; a failure is logged (p would be sent again).
func (n *Notifier) forget(p store.PendingEscalation) {
	if n.cfg.Store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.cfg.Store.DeleteEscalation(ctx, p.ID); err != nil {
		n.log.Error("remove delivered escalation; it may be sent again", "delivery", p.ID,
			logkey.Error, err)
	}
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
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a token
		}
		return fmt.Errorf("webhook request: %w", err)
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
