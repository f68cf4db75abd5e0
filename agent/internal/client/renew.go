package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/wardsec/ward/agent/internal/backoff"
	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Renewal retry bounds after a failed attempt.
const (
	renewRetryMin = 5 * time.Second
	renewRetryMax = 5 * time.Minute
)

// renewal is a renewal asked for at once: why, and who waits for its outcome.
type renewal struct {
	reason  string
	waiters []chan<- error // each gets the outcome of the next attempt; may be empty
}

// requestRenewal asks the renew loop to renew now; done, when not nil, gets the outcome
// of the attempt (nil once the new certificate is stored and in use). Requests made
// while one is pending are merged into it.
func (c *Client) requestRenewal(reason string, done chan<- error) {
	c.renewMu.Lock()
	defer c.renewMu.Unlock()

	r := renewal{reason: reason}
	select {
	case pending := <-c.renewNow:
		r = pending
	default:
	}
	if done != nil {
		r.waiters = append(r.waiters, done)
	}
	c.renewNow <- r // never blocks: the channel was emptied under renewMu
}

// renewLoop renews the certificate at about two thirds of its life, or at once when the
// controller asks. A failed renewal is retried with backoff; when the certificate expires
// before a renewal succeeds, the loop returns an error wrapping ErrCertExpired, which stops
// the agent.
func (c *Client) renewLoop(ctx context.Context, api wardv1.AgentServiceClient) error {
	retry := &backoff.Backoff{Min: renewRetryMin, Max: renewRetryMax}
	var wait time.Duration
	for {
		leaf := c.creds.leaf()
		if wait == 0 {
			wait = renewAt(leaf, c.creds.obtained()).Sub(c.now())
		}
		// Never sleep past expiry: wake up then to stop the agent.
		wait = max(min(wait, leaf.NotAfter.Sub(c.now())), 0)

		timer := time.NewTimer(wait)
		asked := renewal{reason: "two thirds of the certificate's life"}
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case asked = <-c.renewNow:
			timer.Stop()
		case <-timer.C:
		}

		if err := c.checkExpiry(); err != nil {
			asked.tell(err)
			return err
		}
		err := c.renew(ctx, api, asked.reason)
		asked.tell(err)
		if err == nil {
			retry.Reset()
			wait = 0
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		wait = max(retry.Next(), renewRetryMin/2)
		c.log.Warn("certificate renewal failed; retrying", logkey.Error, err,
			logkey.Attempt, retry.Attempts(), logkey.Backoff, wait.String(),
			logkey.NotAfter, leaf.NotAfter.UTC())
	}
}

// renewAt returns when to renew leaf: at two thirds of its life, minus up to a twentieth
// of it, so that agents enrolled together do not all renew in the same second. The life
// starts at the later of NotBefore and when the agent obtained the certificate, so that a
// backdated NotBefore cannot make a short-lived certificate due at once, again and again.
func renewAt(leaf *x509.Certificate, obtained time.Time) time.Time {
	start := leaf.NotBefore
	if obtained.After(start) {
		start = obtained
	}
	life := leaf.NotAfter.Sub(start)
	jitter := time.Duration(rand.Float64() * float64(life/20))
	return start.Add(life*2/3 - jitter)
}

// renew asks for a certificate for a fresh key, stores it and swaps it in for future
// handshakes. Open connections keep the certificate they were made with.
func (c *Client) renew(ctx context.Context, api wardv1.AgentServiceClient,
	reason string) error {
	key, err := pki.NewKey()
	if err != nil {
		return err
	}
	csr, err := pki.NewCSR(key, c.cfg.Info.AgentID)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	resp, err := api.Renew(ctx, &wardv1.RenewRequest{CsrDer: csr})
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	cert, err := c.checkRenewal(key, resp)
	if err != nil {
		return fmt.Errorf("renew: controller answer unusable: %w", err)
	}

	if err := c.cfg.Dir.SaveKeyPair(key, resp.GetCertificateChain()); err != nil {
		return err
	}
	if cas := resp.GetCaCertificates(); len(cas) > 0 {
		if err := c.updateRoots(cas); err != nil {
			return err
		}
	}
	c.creds.swap(cert, c.now())

	c.log.Info("certificate renewed", logkey.Reason, reason,
		logkey.Serial, cert.Leaf.SerialNumber.Text(16), logkey.NotAfter, cert.Leaf.NotAfter.UTC())
	return nil
}

// checkRenewal checks that the new certificate is for key and names this agent.
func (c *Client) checkRenewal(key *ecdsa.PrivateKey,
	resp *wardv1.RenewResponse) (*tls.Certificate, error) {
	chain := resp.GetCertificateChain()
	if len(chain) == 0 {
		return nil, errors.New("no certificate")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, err
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("certificate is not for the new key")
	}
	id, err := identity.FromCertificate(leaf)
	if err != nil {
		return nil, err
	}
	if id != c.cfg.Info.ID() {
		return nil, fmt.Errorf("certificate names %s, not %s", id, c.cfg.Info.ID())
	}
	if !c.now().Before(leaf.NotAfter) {
		return nil, errors.New("certificate already expired")
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

// updateRoots stores a trust bundle sent with a renewal and uses it from the next
// handshake on.
func (c *Client) updateRoots(cas [][]byte) error {
	pool := x509.NewCertPool()
	for _, der := range cas {
		ca, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("renew: trust bundle: %w", err)
		}
		pool.AddCert(ca)
	}
	if err := c.cfg.Dir.SaveCAs(cas); err != nil {
		return err
	}
	c.creds.roots.Store(pool)
	return nil
}

// tell gives err, the outcome of the attempt, to everyone waiting for it.
func (r renewal) tell(err error) {
	for _, w := range r.waiters {
		w <- err // buffered by Renew
	}
}

// RequestRenewal asks the client to renew its certificate now. It does not wait for the
// renewal; a failed one is retried with backoff like any other. Safe for concurrent use.
func (c *Client) RequestRenewal(reason string) { c.requestRenewal(reason, nil) }

// Renew renews the certificate now and waits for the outcome (the rotate_certificate
// action): it returns nil once the new certificate is stored in the state directory and
// used for new connections, the attempt's error when it failed (the renew loop then
// retries with backoff as usual), or ctx's error when ctx ends first (for example while
// the client is not running). Safe for concurrent use.
func (c *Client) Renew(ctx context.Context, reason string) error {
	done := make(chan error, 1)
	c.requestRenewal(reason, done)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("renewal not finished: %w", ctx.Err())
	}
}
