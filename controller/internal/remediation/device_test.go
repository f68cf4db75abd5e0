package remediation

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/wardsec/ward/controller/internal/inventory"
	"github.com/wardsec/ward/controller/internal/store"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// TestDeviceDownIncident opens a device-down incident on the collector a1, finds it not
// opened twice, sees that a drift report naming its check changes nothing, and resolves it.
func TestDeviceDownIncident(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	down := inventory.DeviceDown{Tenant: "t1", Device: "mac:00:00:0c:9a:11:02",
		Collector: "a1", Address: "10.0.0.2", Failures: 3,
		Since: h.clock.Now().Add(-3 * time.Minute), Error: "no answer"}

	id, err := h.engine.DeviceDown(ctx, down)
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.engine.DeviceDown(ctx, down)
	if err != nil || again != id {
		t.Fatalf("second DeviceDown = %q, %v; want %q", again, err, id)
	}
	inc := h.incident("a1", store.DeviceDownCheck(down.Device))
	if inc.ID != id || inc.Kind != store.IncidentKindDeviceDown ||
		inc.State != store.IncidentEscalated {
		t.Fatalf("incident = %+v, want it escalated", inc)
	}
	if got := h.rec.actions(id); !slices.Equal(got, []string{"incident_opened",
		"escalated"}) {
		t.Errorf("decisions = %v, want opened then escalated, once", got)
	}

	h.drift("a1", "", map[string]wardv1.CheckState{
		store.DeviceDownCheck(down.Device): wardv1.CheckState_CHECK_STATE_PASS})
	if got := h.incident("a1", store.DeviceDownCheck(down.Device)); got.State ==
		store.IncidentResolved {
		t.Fatal("a drift report resolved the device-down incident")
	}

	if err := h.engine.DeviceUp(ctx, "t2", id, "answered"); err == nil {
		t.Error("DeviceUp from another tenant resolved the incident")
	}
	if err := h.engine.DeviceUp(ctx, "t1", id, "answered"); err != nil {
		t.Fatal(err)
	}
	if got := h.incident("a1", store.DeviceDownCheck(down.Device)); got.State !=
		store.IncidentResolved {
		t.Errorf("after DeviceUp: %s, want resolved", got.State)
	}
	if err := h.engine.DeviceUp(ctx, "t1", id, "answered"); err != nil {
		t.Errorf("DeviceUp of a resolved incident: %v", err)
	}
}
