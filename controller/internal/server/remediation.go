package server

import (
	"bytes"
	"context"
	"fmt"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/wardsec/ward/controller/internal/agentinstall"
	"github.com/wardsec/ward/controller/internal/baselines"
	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/escalation"
	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/remediation"
	"github.com/wardsec/ward/controller/internal/remediationapi"
)

// remediationParts are the remediation loop's components: the baseline manager (also the
// runbook catalog), the engine driven by the agent streams, the webhook notifier (nil
// without a webhook) and the operator API.
type remediationParts struct {
	baselines *baselines.Manager
	engine    *remediation.Engine
	notifier  *escalation.Notifier
	api       *remediationapi.Server
}

// buildRemediation assembles the remediation loop, recording its decisions in log, and
// points hooks (the agent streams' observer) at its engine. s.agents must exist.
func (s *Server) buildRemediation(policy *ca.PolicyKey, hooks *remediation.Observer,
	log evidence.Recorder) error {
	send := streamSender{streams: s.agents}
	rec := remediation.EvidenceRecorder{Log: log}
	var err error
	p := &s.remediation
	p.baselines, err = baselines.New(baselines.Config{Store: s.db, Signer: policy,
		Sender: send, Recorder: rec, Log: s.log, Clock: s.cfg.Clock})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	var esc remediation.Escalator
	if s.cfg.WebhookURL != "" {
		secret, err := os.ReadFile(s.cfg.WebhookSecretFile)
		if err != nil {
			return fmt.Errorf("server: webhook secret: %w", err)
		}
		p.notifier, err = escalation.New(escalation.Config{URL: s.cfg.WebhookURL,
			Secret: bytes.TrimSpace(secret), Store: s.db, Log: s.log, Clock: s.cfg.Clock})
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		esc = p.notifier
	}
	p.engine, err = remediation.New(remediation.Config{Store: s.db, Catalog: p.baselines,
		Signer: policy, Sender: send, Recorder: rec, Escalator: esc,
		OfflineAfter: 10 * s.cfg.HeartbeatInterval, Log: s.log, Clock: s.cfg.Clock,
		CollectorOwners: []string{agentinstall.Owner}})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	hooks.Engine, hooks.Baselines = p.engine, p.baselines
	p.api, err = remediationapi.New(remediationapi.Config{Store: s.db, Engine: p.engine,
		Baselines: p.baselines, Log: s.log})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// run runs the engine's sweep and the webhook deliveries until ctx ends.
func (p *remediationParts) run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.engine.Run(ctx) })
	if p.notifier != nil {
		g.Go(func() error { return p.notifier.Run(ctx) })
	}
	return g.Wait()
}
