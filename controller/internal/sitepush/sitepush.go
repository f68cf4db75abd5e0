// Package sitepush sends each tenant's site configuration to its collectors: signed with
// the policy key as a SiteConfigUpdate on their streams, when an operator sets it and
// whenever a collector connects (so a collector offline at the time gets it too). The
// collector writes it as its collector.json and scans with it.
package sitepush

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/agentapi"
	"github.com/wardsec/ward/controller/internal/inventory"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/site"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// PayloadType is the SignedPayload type of a site configuration.
const PayloadType = "ward.v1.SiteConfigUpdate"

// CollectorRole is the session role of the agents that get the site configuration.
const CollectorRole = store.AgentRoleCollector

// Store reads stored site configurations.
type Store interface {
	GetSiteConfig(ctx context.Context, tenant string) (store.SiteConfig, error)
}

// Signer signs payloads with the policy key (ca.PolicyKey implements it).
type Signer interface {
	Sign(payloadType string, payload []byte) (*wardv1.SignedPayload, error)
}

// Sender hands a message to an agent's open stream; an error means it was not sent.
type Sender interface {
	Send(agentID string, m *wardv1.ConnectResponse) error
}

// Targets names the agentless devices a collector is to poll (inventory.Inventory
// implements it).
type Targets interface {
	PollTargets(ctx context.Context, tenant, collector string) ([]site.PollTarget, error)
}

// Publisher implements inventory.SitePublisher and agentapi.Observer. Store, Signer,
// Sender and Log are required and set during assembly, before the first call (the
// inventory needs the Publisher before the streams exist); the Publisher is then safe for
// concurrent use.
//
// Each collector gets the configuration with its own poll targets (Targets; none when
// nil), and again whenever they change after one of its scans completes.
//
// Known limitation: targets that change through an operator's approval reach the
// collector at its next completed scan or connection.
type Publisher struct {
	Store   Store
	Signer  Signer
	Sender  Sender
	Targets Targets
	Log     *slog.Logger
	Clock   func() time.Time // nil means time.Now

	mu         sync.Mutex
	collectors map[string]map[string]bool // tenant -> collector agent ids seen connected
	sent       map[string]string          // collector agent id -> poll targets last sent
}

var (
	_ inventory.SitePublisher = (*Publisher)(nil)
	_ agentapi.Observer       = (*Publisher)(nil)
)

// PublishSiteConfig sends c to the tenant's collectors that connected since the
// controller started. A collector not connected now gets the stored configuration when it
// connects. The error joins the failures to sign or send.
func (p *Publisher) PublishSiteConfig(ctx context.Context, tenant string,
	c site.Config) error {
	var errs []error
	for _, id := range p.collectorsOf(tenant) {
		msg, err := p.message(ctx, tenant, id, c, p.now())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := p.Sender.Send(id, msg); err != nil {
			errs = append(errs, fmt.Errorf("sitepush: send to %s: %w", id, err))
			continue
		}
		p.Log.Info("site configuration sent", logkey.Tenant, tenant, logkey.Agent, id)
	}
	return errors.Join(errs...)
}

// Connected sends a collector (a session whose roles include CollectorRole) its
// tenant's stored site configuration, when there is one, and remembers it for later
// configurations. Another agent is forgotten: it gets none, also if it was a collector
// before.
func (p *Publisher) Connected(ctx context.Context, tenant, agentID string, roles []string,
	_ *wardv1.Hello) {
	if !slices.Contains(roles, CollectorRole) {
		p.forget(tenant, agentID)
		return
	}
	p.mu.Lock()
	if p.collectors == nil {
		p.collectors = map[string]map[string]bool{}
	}
	if p.collectors[tenant] == nil {
		p.collectors[tenant] = map[string]bool{}
	}
	p.collectors[tenant][agentID] = true
	p.mu.Unlock()

	sc, err := p.Store.GetSiteConfig(ctx, tenant)
	if errors.Is(err, store.ErrNotFound) {
		return
	}
	if err != nil {
		p.Log.Error("read site configuration", logkey.Tenant, tenant, logkey.Error, err)
		return
	}
	msg, err := p.message(ctx, tenant, agentID, sc.Config, sc.UpdatedAt)
	if err == nil {
		err = p.Sender.Send(agentID, msg)
	}
	if err != nil {
		p.Log.Warn("send site configuration", logkey.Agent, agentID, logkey.Error, err)
		return
	}
	p.Log.Info("site configuration sent", logkey.Tenant, tenant, logkey.Agent, agentID)
}

// forget drops agentID from the tenant's collectors.
func (p *Publisher) forget(tenant, agentID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.collectors[tenant], agentID)
	delete(p.sent, agentID)
}

// Committed sends a collector whose scan completed its configuration again when its poll
// targets changed (the scan may have found, reclassified or moved devices).
func (p *Publisher) Committed(ctx context.Context, tenant, agentID string,
	m *wardv1.ConnectRequest) {
	if !m.GetDiscoveryReport().GetComplete() || p.Targets == nil || !p.isCollector(tenant,
		agentID) {
		return
	}
	sc, err := p.Store.GetSiteConfig(ctx, tenant)
	if err != nil {
		return // none yet (nothing to poll), or the next scan tries again
	}
	targets, err := p.Targets.PollTargets(ctx, tenant, agentID)
	if err != nil {
		p.Log.Warn("poll targets", logkey.Agent, agentID, logkey.Error, err)
		return
	}
	if p.sentTargets(agentID) == targetsKey(targets) {
		return
	}
	msg, err := p.message(ctx, tenant, agentID, sc.Config, p.now())
	if err == nil {
		err = p.Sender.Send(agentID, msg)
	}
	if err != nil {
		p.Log.Warn("send site configuration", logkey.Agent, agentID, logkey.Error, err)
		return
	}
	p.Log.Info("site configuration sent: poll targets changed", logkey.Tenant, tenant,
		logkey.Agent, agentID, logkey.Count, len(targets))
}

// message builds the signed update of c for the tenant's collector, with its poll
// targets, and remembers the targets as sent.
func (p *Publisher) message(ctx context.Context, tenant, collector string, c site.Config,
	at time.Time) (*wardv1.ConnectResponse, error) {
	c.Poll.Targets = nil
	if p.Targets != nil {
		targets, err := p.Targets.PollTargets(ctx, tenant, collector)
		if err != nil {
			return nil, fmt.Errorf("sitepush: %w", err)
		}
		c.Poll.Targets = targets
	}
	p.mu.Lock()
	if p.sent == nil {
		p.sent = map[string]string{}
	}
	p.sent[collector] = targetsKey(c.Poll.Targets)
	p.mu.Unlock()

	doc, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("sitepush: encode: %w", err)
	}
	payload, err := proto.Marshal(&wardv1.SiteConfigUpdate{Tenant: tenant,
		ConfigJson: doc, PublishedAt: timestamppb.New(at)})
	if err != nil {
		return nil, fmt.Errorf("sitepush: encode: %w", err)
	}
	sp, err := p.Signer.Sign(PayloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("sitepush: sign: %w", err)
	}
	return &wardv1.ConnectResponse{Body: &wardv1.ConnectResponse_SiteConfig{
		SiteConfig: sp}}, nil
}

// targetsKey identifies a list of poll targets, to tell whether it changed.
func targetsKey(ts []site.PollTarget) string {
	b, _ := json.Marshal(ts)
	return string(b)
}

func (p *Publisher) sentTargets(collector string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent[collector]
}

func (p *Publisher) isCollector(tenant, agentID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.collectors[tenant][agentID]
}

func (p *Publisher) collectorsOf(tenant string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for id := range p.collectors[tenant] {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func (p *Publisher) now() time.Time {
	if p.Clock != nil {
		return p.Clock()
	}
	return time.Now()
}
