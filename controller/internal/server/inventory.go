package server

import (
	"context"
	"fmt"

	"github.com/wardsec/ward/controller/internal/agentapi"
	"github.com/wardsec/ward/controller/internal/agentinstall"
	"github.com/wardsec/ward/controller/internal/inventory"
	"github.com/wardsec/ward/controller/internal/remediation"
	"github.com/wardsec/ward/controller/internal/sitepush"
	"github.com/wardsec/ward/pkg/classify"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// buildInventory assembles the device inventory and its operator API. Vendors come from
// nmap's MAC prefix table when installed, else from the classifier's embedded table.
// s.evidence must exist. Agent installations go through installer, whose command issuer
// and failure recorder buildRemediation sets once the engine exists.
// Site configurations go to the collectors through sites, each with the poll targets the
// inventory names for it; device-down incidents go to incidents.
func (s *Server) buildInventory(installer *agentinstall.Installer,
	sites *sitepush.Publisher, incidents *deviceIncidents) (*inventory.Inventory,
	*inventory.Server, error) {
	vendors, err := classify.LoadVendors(classify.NmapMACPrefixesPath)
	if err != nil {
		s.log.Info("mac vendor table: using the embedded fallback", logkey.Error, err,
			logkey.Count, vendors.Len())
	}
	inv, err := inventory.New(inventory.Config{Store: s.db,
		Classifier: classify.New(vendors), Recorder: s.evidence.log,
		Bootstrapper: installer, Sites: sites, Incidents: incidents,
		DownAfter: s.cfg.DeviceDownAfter, Metrics: s.metrics, Log: s.log,
		Clock: s.cfg.Clock})
	if err != nil {
		return nil, nil, fmt.Errorf("server: %w", err)
	}
	sites.Targets = inv
	return inv, inventory.NewServer(inv), nil
}

// deviceIncidents hands device-down incidents to the remediation engine, which
// buildRemediation sets once it exists (the inventory is built first).
type deviceIncidents struct{ engine *remediation.Engine }

var _ inventory.DeviceIncidents = (*deviceIncidents)(nil)

func (d *deviceIncidents) DeviceDown(ctx context.Context, dd inventory.DeviceDown) (string,
	error) {
	return d.engine.DeviceDown(ctx, dd)
}

func (d *deviceIncidents) DeviceUp(ctx context.Context, tenant, id, reason string) error {
	return d.engine.DeviceUp(ctx, tenant, id, reason)
}

// observers passes stream events to several observers, in order.
type observers []agentapi.Observer

var _ agentapi.Observer = observers(nil)

func (os observers) Connected(ctx context.Context, tenant, agentID string, roles []string,
	hello *wardv1.Hello) {
	for _, o := range os {
		o.Connected(ctx, tenant, agentID, roles, hello)
	}
}

func (os observers) Committed(ctx context.Context, tenant, agentID string,
	m *wardv1.ConnectRequest) {
	for _, o := range os {
		o.Committed(ctx, tenant, agentID, m)
	}
}
