package client

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/policysig"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// verify checks a signed payload against the pinned policy key and decodes it into m.
// Nothing is decoded unless the signature, key id and type check out.
func (c *Client) verify(p *wardv1.SignedPayload, m proto.Message) error {
	want := string(proto.MessageName(m))
	err := policysig.Verify(c.cfg.PolicyKey, want, policysig.Signed{
		PayloadType: p.GetPayloadType(),
		Payload:     p.GetPayload(),
		Signature:   p.GetSignature(),
		KeyID:       p.GetKeyId(),
	})
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(p.GetPayload(), m); err != nil {
		return fmt.Errorf("decode %s: %w", want, err)
	}
	return nil
}

// handleCommand hands a command to Config.Commands, which verifies and runs it. Without
// that hook it verifies the command, checks that it is addressed to this agent and not
// expired, and logs it without running it.
func (c *Client) handleCommand(p *wardv1.SignedPayload) {
	if c.cfg.Commands != nil {
		c.cfg.Commands(p)
		return
	}

	var spec wardv1.CommandSpec
	if err := c.verify(p, &spec); err != nil {
		c.log.Warn("command refused: signature does not verify", logkey.Error, err)
		return
	}
	log := c.log.With(logkey.Command, spec.GetCommandId(), logkey.Runbook, spec.GetRunbookId())

	switch {
	case spec.GetAgentId() != c.cfg.Info.AgentID || spec.GetTenant() != c.cfg.Info.Tenant:
		log.Warn("command refused: addressed to another agent",
			"addressed_to", spec.GetAgentId(), logkey.Tenant, spec.GetTenant())
	case spec.GetExpiresAt() == nil || !c.now().Before(spec.GetExpiresAt().AsTime()):
		log.Warn("command refused: expired",
			"expires_at", spec.GetExpiresAt().AsTime().Format(time.RFC3339))
	default:
		log.Warn("command verified; running commands is not yet supported by this agent",
			"steps", len(spec.GetSteps()), "dry_run", spec.GetDryRun())
	}
}

// handleBaseline verifies a baseline update and hands it to Config.Baselines when it is
// for this agent's tenant.
func (c *Client) handleBaseline(p *wardv1.SignedPayload) {
	var spec wardv1.BaselineSpec
	if err := c.verify(p, &spec); err != nil {
		c.log.Warn("baseline update refused: signature does not verify", logkey.Error, err)
		return
	}
	if spec.GetTenant() != c.cfg.Info.Tenant {
		c.log.Warn("baseline update refused: for another tenant", logkey.Tenant, spec.GetTenant())
		return
	}
	if c.cfg.Baselines == nil {
		c.log.Warn("baseline update verified; this agent applies no baselines",
			"baseline", spec.GetBaselineId(), logkey.Version, spec.GetVersion())
		return
	}
	c.cfg.Baselines(&spec)
}

// handleCheckpoint verifies an evidence checkpoint and hands it to Config.Checkpoints.
func (c *Client) handleCheckpoint(p *wardv1.SignedPayload) {
	var cp wardv1.Checkpoint
	if err := c.verify(p, &cp); err != nil {
		c.log.Warn("checkpoint refused: signature does not verify", logkey.Error, err)
		return
	}
	if c.cfg.Checkpoints == nil {
		c.log.Info("checkpoint verified; this agent is no witness",
			logkey.Tenant, cp.GetTenant(), "size", cp.GetSize())
		return
	}
	c.cfg.Checkpoints(&cp)
}

// handleSiteConfig verifies a site configuration and hands it to Config.SiteConfigs when
// it is for this agent's tenant.
func (c *Client) handleSiteConfig(p *wardv1.SignedPayload) {
	var u wardv1.SiteConfigUpdate
	if err := c.verify(p, &u); err != nil {
		c.log.Warn("site configuration refused: signature does not verify", logkey.Error, err)
		return
	}
	if u.GetTenant() != c.cfg.Info.Tenant {
		c.log.Warn("site configuration refused: for another tenant", logkey.Tenant, u.GetTenant())
		return
	}
	if c.cfg.SiteConfigs == nil {
		c.log.Info("site configuration verified; this agent is no collector")
		return
	}
	c.cfg.SiteConfigs(&u)
}
