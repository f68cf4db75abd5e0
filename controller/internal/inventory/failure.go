package inventory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/logkey"
)

// IncidentKindBootstrap is the Kind of incidents about a failed agent installation.
const IncidentKindBootstrap = "bootstrap"

// BootstrapCheck is the Check of the incident about installing an agent on a device: one
// unresolved incident per device and collector.
func BootstrapCheck(deviceID string) string { return "DEVICE-BOOTSTRAP:" + deviceID }

// incidentOpener is the part of the store that opens incidents; when the inventory's
// store has it, bootstrap failures become incidents.
type incidentOpener interface {
	OpenIncident(ctx context.Context, inc store.Incident) (store.Incident, bool, error)
}

// BootstrapFailed records that installing an agent on a device failed at step (for
// example "host key", "copy binary", "start unit"): the device becomes failed with the
// step and reason, an incident opens on the collector naming them (when the store keeps
// incidents), and the evidence log records it. The collector's bootstrap reports call it;
// reason must not contain secrets. Approving the device again retries.
func (inv *Inventory) BootstrapFailed(ctx context.Context, tenant, deviceID, step,
	reason string) error {
	why := "bootstrap failed at " + step + ": " + clip(reason)
	d, err := inv.st.UpdateDevice(ctx, tenant, deviceID, nil,
		func(d *store.Device, found bool, _ []store.Device) error {
			if !found {
				return store.ErrNotFound
			}
			inv.setState(d, store.DeviceFailed, controllerActor, why)
			return nil
		})
	if err != nil {
		return fmt.Errorf("bootstrap failed on %s: %w", deviceID, err)
	}
	inv.log.Warn("bootstrap failed", logkey.Tenant, tenant, logkey.Device, deviceID,
		logkey.Agent, d.Collector, logkey.Reason, why)

	if _, err := inv.cfg.Recorder.Record(ctx, evidence.Entry{Tenant: tenant,
		Type:    TypeDeviceBootstrapFailed,
		Actor:   evidence.Actor{Kind: evidence.ActorAgent, ID: d.Collector},
		Subject: deviceID, Data: map[string]any{"step": step, "reason": reason}}); err != nil {
		return fmt.Errorf("record bootstrap failure of %s: %w", deviceID, err)
	}
	return inv.openBootstrapIncident(ctx, d, why)
}

func (inv *Inventory) openBootstrapIncident(ctx context.Context, d store.Device,
	why string) error {
	opener, ok := inv.st.(incidentOpener)
	if !ok || d.Collector == "" {
		return nil
	}
	now := inv.clock().UTC()
	id := make([]byte, 8)
	rand.Read(id)
	inc, created, err := opener.OpenIncident(ctx, store.Incident{
		ID: "inc-" + hex.EncodeToString(id), Tenant: d.Tenant, Agent: d.Collector,
		Check: BootstrapCheck(d.ID), Kind: IncidentKindBootstrap, State: store.IncidentOpen,
		Severity: "medium", Observed: why, OpenedAt: now, UpdatedAt: now,
		History: []store.IncidentEvent{{At: now, State: store.IncidentOpen,
			Actor: controllerActor, Action: "opened", Detail: why}},
	})
	if err != nil {
		return fmt.Errorf("open bootstrap incident for %s: %w", d.ID, err)
	}
	if created {
		if _, err := inv.cfg.Recorder.Record(ctx, evidence.Entry{Tenant: d.Tenant,
			Type:    evidence.TypeIncidentOpened,
			Actor:   evidence.Actor{Kind: evidence.ActorController, ID: controllerActor},
			Subject: inc.ID, Data: map[string]any{"device": d.ID, "reason": why}}); err != nil {
			return fmt.Errorf("record bootstrap incident: %w", err)
		}
	}
	return nil
}
