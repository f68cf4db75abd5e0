package inventory

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/wardsec/ward/controller/internal/agentapi"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// catchUpBatch is how many stored messages one catch-up read takes at a time.
const catchUpBatch = 256

// Observer feeds the inventory from the agent streams: it implements agentapi.Observer.
// Reports are read only after they are stored; the discovery cursor remembers how far
// each collector's stored messages were read, so reports committed while the inventory
// could not take them (a crash between commit and ingest, an error) are read when the
// collector next connects.
type Observer struct {
	Inventory *Inventory
}

var _ agentapi.Observer = Observer{}

// Connected links devices to an agent whose reported addresses they carry and, for a
// session with the collector role, reads its stored discovery and device poll reports
// the inventory has not taken yet.
func (o Observer) Connected(ctx context.Context, tenant, agentID string, roles []string,
	hello *wardv1.Hello) {
	inv := o.Inventory
	addrs := bareAddresses(hello.GetHost().GetAddresses())
	if err := inv.AgentConnected(ctx, tenant, agentID, addrs); err != nil {
		inv.log.Error("link devices to agent", logkey.Agent, agentID, logkey.Error, err)
	}
	if !slices.Contains(roles, store.AgentRoleCollector) {
		return
	}
	if err := inv.CatchUp(ctx, tenant, agentID); err != nil {
		inv.log.Error("read stored discovery reports", logkey.Agent, agentID,
			logkey.Error, err)
	}
	if err := inv.CatchUpPolls(ctx, tenant, agentID); err != nil {
		inv.log.Error("read stored device poll reports", logkey.Agent, agentID,
			logkey.Error, err)
	}
}

// Committed ingests a stored discovery report and advances the collector's cursor.
func (o Observer) Committed(ctx context.Context, tenant, agentID string,
	m *wardv1.ConnectRequest) {
	r := m.GetDiscoveryReport()
	if r == nil {
		return
	}
	inv := o.Inventory
	cur, err := inv.st.DiscoveryCursor(ctx, tenant, agentID)
	if err == nil && cur+1 < m.GetSeq() {
		// Something before this report was not read: read in order from the store.
		err = inv.CatchUp(ctx, tenant, agentID)
	} else if err == nil {
		err = inv.ingestAt(ctx, tenant, agentID, m.GetSeq(), r)
	}
	if err != nil {
		inv.log.Error("ingest discovery report", logkey.Agent, agentID,
			logkey.Seq, m.GetSeq(), logkey.Error, err)
	}
}

// ingestAt ingests the report stored at seq and moves the cursor past it.
func (inv *Inventory) ingestAt(ctx context.Context, tenant, agentID string, seq uint64,
	r *wardv1.DiscoveryReport) error {
	if err := inv.Ingest(ctx, tenant, agentID, r); err != nil {
		return err
	}
	return inv.st.SetDiscoveryCursor(ctx, tenant, agentID, seq)
}

// CatchUp reads the collector's stored messages after its cursor, in order, ingesting
// the discovery reports among them.
func (inv *Inventory) CatchUp(ctx context.Context, tenant, agentID string) error {
	after, err := inv.st.DiscoveryCursor(ctx, tenant, agentID)
	if err != nil {
		return err
	}
	for {
		msgs, err := inv.st.ListMessages(ctx, tenant, agentID, after, catchUpBatch)
		if err != nil || len(msgs) == 0 {
			return err
		}
		for _, m := range msgs {
			var req wardv1.ConnectRequest
			if err := proto.Unmarshal(m.Body, &req); err != nil {
				return fmt.Errorf("decode stored message %d: %w", m.Seq, err)
			}
			if r := req.GetDiscoveryReport(); r != nil {
				if err := inv.Ingest(ctx, tenant, agentID, r); err != nil {
					return err
				}
			}
			after = m.Seq
		}
		if err := inv.st.SetDiscoveryCursor(ctx, tenant, agentID, after); err != nil {
			return err
		}
	}
}

// bareAddresses drops a "/prefix" suffix from interface addresses.
func bareAddresses(in []string) []string {
	out := make([]string, 0, len(in))
	for _, a := range in {
		a, _, _ = strings.Cut(a, "/")
		out = append(out, a)
	}
	return out
}
