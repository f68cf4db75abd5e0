package server

import (
	"context"
	"fmt"

	"github.com/wardsec/ward/controller/internal/agentapi"
	"github.com/wardsec/ward/controller/internal/agentinstall"
	"github.com/wardsec/ward/controller/internal/inventory"
	"github.com/wardsec/ward/controller/internal/sitepush"
	"github.com/wardsec/ward/pkg/classify"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// buildInventory assembles the device inventory and its operator API. Vendors come from
// nmap's MAC prefix table when installed, else from the classifier's embedded table.
// s.evidence must exist. Agent installations go through installer, whose command issuer
// and failure recorder buildRemediation sets once the engine exists.
// Site configurations go to the collectors through sites.
func (s *Server) buildInventory(installer *agentinstall.Installer,
	sites *sitepush.Publisher) (*inventory.Inventory, *inventory.Server, error) {
	vendors, err := classify.LoadVendors(classify.NmapMACPrefixesPath)
	if err != nil {
		s.log.Info("mac vendor table: using the embedded fallback", logkey.Error, err,
			logkey.Count, vendors.Len())
	}
	inv, err := inventory.New(inventory.Config{Store: s.db,
		Classifier: classify.New(vendors), Recorder: s.evidence.log,
		Bootstrapper: installer, Sites: sites, Log: s.log, Clock: s.cfg.Clock})
	if err != nil {
		return nil, nil, fmt.Errorf("server: %w", err)
	}
	return inv, inventory.NewServer(inv), nil
}

// observers passes stream events to several observers, in order.
type observers []agentapi.Observer

var _ agentapi.Observer = observers(nil)

func (os observers) Connected(ctx context.Context, tenant, agentID string,
	hello *wardv1.Hello) {
	for _, o := range os {
		o.Connected(ctx, tenant, agentID, hello)
	}
}

func (os observers) Committed(ctx context.Context, tenant, agentID string,
	m *wardv1.ConnectRequest) {
	for _, o := range os {
		o.Committed(ctx, tenant, agentID, m)
	}
}
