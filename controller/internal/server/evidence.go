package server

import (
	"fmt"
	"os"

	"google.golang.org/grpc"

	"github.com/wardsec/ward/controller/internal/ca"
	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/install"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/scrub"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// evidenceParts are the evidence log's components.
type evidenceParts struct {
	key          *evidence.Key
	log          *evidence.Log
	checkpointer *evidence.Checkpointer
	service      *evidence.Service
	witnesses    *evidence.Witnesses // sends checkpoints to collectors, stores countersignatures
}

// buildEvidence loads (or, for installations made before the evidence log, creates) the
// evidence key and assembles the recorder, the checkpointer and the EvidenceService.
func (s *Server) buildEvidence(authority *ca.CA, policy *ca.PolicyKey) (*evidenceParts, error) {
	key, err := evidence.LoadOrCreateKey(s.cfg.DataDir, authority)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	salt, err := key.ScrubSalt()
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	p := &evidenceParts{key: key}
	p.checkpointer = evidence.NewCheckpointer(evidence.CheckpointerConfig{
		Store: s.db, Tenants: s.store, Key: key, Log: s.log, Clock: s.cfg.Clock,
		Interval: s.cfg.CheckpointInterval, Every: s.cfg.CheckpointEvery,
		Published: s.publishCheckpoint,
	})
	p.log = evidence.NewLog(evidence.Config{Store: s.db, Scrubber: scrub.New(salt),
		Log: s.log, Clock: s.cfg.Clock, Appended: p.checkpointer.Appended})
	p.checkpointer.SetRecorder(p.log)
	p.witnesses = evidence.NewWitnesses(evidence.WitnessesConfig{Store: s.db, Signer: policy,
		Roots: authority.Roots(), Recorder: p.log, Log: s.log, Clock: s.cfg.Clock})
	exporter := &evidence.Exporter{Store: s.db, Key: key, Checkpointer: p.checkpointer,
		Clock: s.cfg.Clock}
	archiver, err := s.buildArchiver(authority, exporter, p.log)
	if err != nil {
		return nil, err
	}
	p.service = evidence.NewService(evidence.ServiceConfig{Store: s.db, Tenants: s.store,
		Exporter: exporter, Archiver: archiver, Log: s.log})
	s.log.Info("evidence key loaded", "fingerprint", key.Fingerprint)
	return p, nil
}

// buildArchiver makes the archive directory (0700) and the Archiver that keeps archives
// there and prunes past the retention period.
func (s *Server) buildArchiver(authority *ca.CA, x *evidence.Exporter,
	rec evidence.Recorder) (*evidence.Archiver, error) {
	dir := install.PathsOf(s.cfg.DataDir).EvidenceArchives
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("server: evidence archives: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("server: evidence archives: %w", err)
	}
	a, err := evidence.NewArchiver(evidence.ArchiverConfig{Store: s.db, Retention: s.db,
		Exporter: x, Recorder: rec, Roots: authority.Roots(), Dir: dir,
		Years: s.cfg.EvidenceRetentionYears, Clock: s.cfg.Clock, Log: s.log})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.log.Info("evidence retention", "years", a.Years(), "archive_dir", dir)
	return a, nil
}

func (p *evidenceParts) register(g *grpc.Server) {
	wardv1.RegisterEvidenceServiceServer(g, p.service)
}

// Recorder returns the evidence recorder every component records through.
func (s *Server) Recorder() evidence.Recorder { return s.evidence.log }

// publishCheckpoint sends a new checkpoint to the tenant's witnesses (its collectors).
func (s *Server) publishCheckpoint(cp store.EvidenceCheckpoint) {
	s.evidence.witnesses.Published(cp)
}
