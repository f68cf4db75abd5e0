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

// CollectorRole is the role a collector's Hello lists.
const CollectorRole = "collector"

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

// Publisher implements inventory.SitePublisher and agentapi.Observer. Store, Signer,
// Sender and Log are required and set during assembly, before the first call (the
// inventory needs the Publisher before the streams exist); the Publisher is then safe for
// concurrent use.
type Publisher struct {
	Store  Store
	Signer Signer
	Sender Sender
	Log    *slog.Logger
	Clock  func() time.Time // nil means time.Now

	mu         sync.Mutex
	collectors map[string]map[string]bool // tenant -> collector agent ids seen connected
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
	msg, err := p.message(tenant, c, p.now())
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range p.collectorsOf(tenant) {
		if err := p.Sender.Send(id, msg); err != nil {
			errs = append(errs, fmt.Errorf("sitepush: send to %s: %w", id, err))
			continue
		}
		p.Log.Info("site configuration sent", logkey.Tenant, tenant, logkey.Agent, id)
	}
	return errors.Join(errs...)
}

// Connected sends a collector its tenant's stored site configuration, when there is one,
// and remembers it for later configurations.
func (p *Publisher) Connected(ctx context.Context, tenant, agentID string,
	hello *wardv1.Hello) {
	if !slices.Contains(hello.GetHost().GetRoles(), CollectorRole) {
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
	msg, err := p.message(tenant, sc.Config, sc.UpdatedAt)
	if err == nil {
		err = p.Sender.Send(agentID, msg)
	}
	if err != nil {
		p.Log.Warn("send site configuration", logkey.Agent, agentID, logkey.Error, err)
		return
	}
	p.Log.Info("site configuration sent", logkey.Tenant, tenant, logkey.Agent, agentID)
}

// Committed does nothing: collectors send no site configurations.
func (p *Publisher) Committed(context.Context, string, string, *wardv1.ConnectRequest) {}

// message builds the signed update of c for tenant.
func (p *Publisher) message(tenant string, c site.Config, at time.Time) (
	*wardv1.ConnectResponse, error) {
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
