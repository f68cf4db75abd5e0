package remediation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wardsec/ward/controller/internal/inventory"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/logkey"
)

var _ inventory.DeviceIncidents = (*Engine)(nil)

// DeviceDown opens the device-down incident of an agentless device (once: an unresolved
// one is returned instead) and escalates it, as for an agent gone offline: no runbook
// reaches a device without an agent. The incident is recorded as evidence before
// DeviceDown returns its id; an incident opened before whose records were not all
// appended (it is still open) is escalated again.
func (e *Engine) DeviceDown(ctx context.Context, d inventory.DeviceDown) (string, error) {
	now := e.clock()
	detail := fmt.Sprintf("device %s (%s) did not answer %d polls in a row since %s",
		d.Device, d.Address, d.Failures, d.Since.UTC().Format(time.RFC3339))
	if d.Error != "" {
		detail += ": " + d.Error
	}
	inc, created, err := e.st.OpenIncident(ctx, store.Incident{
		ID: newID("inc-"), Tenant: d.Tenant, Agent: d.Collector,
		Check: store.DeviceDownCheck(d.Device), Kind: store.IncidentKindDeviceDown,
		State: store.IncidentOpen, Severity: "high", Observed: detail, OpenedAt: now,
		UpdatedAt: now,
		History: []store.IncidentEvent{{At: now, State: store.IncidentOpen,
			Actor: ControllerActor, Action: "opened", Detail: detail}},
	})
	if err != nil {
		return "", fmt.Errorf("remediation: device down: %w", err)
	}
	if !created {
		if inc.State != store.IncidentOpen {
			return inc.ID, nil
		}
		return inc.ID, e.escalate(ctx, inc, ControllerActor, "device down, "+detail)
	}
	e.log.Warn("incident opened", incidentKey, inc.ID, logkey.Agent, d.Collector,
		logkey.Device, d.Device, logkey.Check, inc.Check)
	if err := e.record(ctx, decisionOf(inc, "incident_opened", ControllerActor,
		detail)); err != nil {
		return "", err
	}
	return inc.ID, e.escalate(ctx, inc, ControllerActor, "device down, "+detail)
}

// DeviceUp resolves a device-down incident (recorded first); nil when it is resolved
// already or gone.
func (e *Engine) DeviceUp(ctx context.Context, tenant, incidentID, reason string) error {
	inc, err := e.st.GetIncident(ctx, incidentID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remediation: device up: %w", err)
	}
	if inc.Tenant != tenant || inc.Kind != store.IncidentKindDeviceDown {
		return fmt.Errorf("remediation: device up: incident %s is not a device-down "+
			"incident of %s", incidentID, tenant)
	}
	return e.resolve(ctx, inc, ControllerActor, reason)
}
