package remediation_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/baselines"
	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/remediation"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// BenchmarkDriftReports measures the controller's throughput for drift reports turned
// into incidents and commands, after the stream has committed them (the engine with the
// real baseline catalog, hipaa-v1 and the shipped runbooks): each report from one of 500
// agents (10 tenants, every agent connected, tier 1) turns SSH-002 to failing, which
// opens an incident and issues, signs, stores and sends RB-SSH-001, or back to passing,
// which resolves it. The store is
// the real Badger store with synced writes. Each agent reports in turn, as its stream
// does; the agents report concurrently. The reported figure is reports/s.
func BenchmarkDriftReports(b *testing.B) {
	const agents, tenants = 500, 10
	dir := b.TempDir()
	if err := ca.CreatePolicyKey(dir); err != nil {
		b.Fatal(err)
	}
	key, err := ca.LoadPolicyKey(dir)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	st, err := badger.Open(dir+"/db", log)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()

	ctx := context.Background()
	send := connected{}
	for t := range tenants {
		st.CreateTenant(ctx, store.Tenant{ID: fmt.Sprintf("t%d", t)})
	}
	for i := range agents {
		id := fmt.Sprintf("a%d", i)
		st.CreateAgent(ctx, store.Agent{ID: id, Tenant: fmt.Sprintf("t%d", i%tenants),
			Tier: 1, Online: true})
	}
	catalog, err := baselines.New(baselines.Config{Store: st, Signer: key, Sender: send,
		Log: log})
	if err != nil {
		b.Fatal(err)
	}
	e, err := remediation.New(remediation.Config{Store: st, Catalog: catalog, Signer: key,
		Sender: send, MaxConcurrent: agents, FlapLimit: 1 << 30, Log: log})
	if err != nil {
		b.Fatal(err)
	}

	// Each agent's stream hands its reports over one at a time, as agentapi does; the
	// agents report concurrently.
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant, agent := fmt.Sprintf("t%d", i%tenants), fmt.Sprintf("a%d", i)
			for round := 0; next.Add(1) <= int64(b.N); round++ {
				state := wardv1.CheckState_CHECK_STATE_FAIL
				if round%2 == 1 {
					state = wardv1.CheckState_CHECK_STATE_PASS
				}
				r := &wardv1.DriftReport{Results: []*wardv1.CheckResult{{
					CheckId: "SSH-002", State: state, Observed: "PasswordAuthentication yes",
					Since: timestamppb.Now()}}}
				if err := e.HandleDrift(ctx, tenant, agent, r); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reports/s")
}

// connected takes every message for every agent, as open streams would.
type connected struct{}

func (connected) Send(string, *wardv1.ConnectResponse) error { return nil }
