package agent

import (
	"crypto/tls"
	"log/slog"
	"path/filepath"
	"slices"

	"github.com/wardsec/ward/agent/internal/client"
	"github.com/wardsec/ward/agent/internal/state"
	"github.com/wardsec/ward/agent/internal/witness"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// witnessHook returns the client's Checkpoints hook for a collector: each checkpoint is
// checked against the clinic's copy and the countersignature (or refusal) is sent through
// the client, which *c points to once it exists. Agents without the collector role get
// nil: they are no witnesses.
func witnessHook(dir state.Dir, tenant string, roles []string, c **client.Client,
	log *slog.Logger) (func(*wardv1.Checkpoint), error) {
	if !slices.Contains(roles, "collector") {
		return nil, nil
	}
	w, err := witness.Open(witness.Config{Dir: string(dir), Tenant: tenant,
		KeyPair: func() (tls.Certificate, error) {
			return pki.LoadKeyPair(filepath.Join(string(dir), state.CertFile),
				filepath.Join(string(dir), state.KeyFile))
		},
		Log: log})
	if err != nil {
		return nil, err
	}
	return func(cp *wardv1.Checkpoint) {
		ws := w.Check(cp)
		if ws == nil {
			return
		}
		req := &wardv1.ConnectRequest{Body: &wardv1.ConnectRequest_WitnessSignature{
			WitnessSignature: ws}}
		if _, err := (*c).Enqueue(req); err != nil {
			log.Error("witness signature not spooled", logkey.Error, err)
		}
	}, nil
}

// rolesOf returns the roles the agent runs: cfg.Roles when set, else those of enrollment.
func rolesOf(cfg Config, st *state.State) []string {
	if len(cfg.Roles) > 0 {
		return cfg.Roles
	}
	return st.Info.Roles
}
