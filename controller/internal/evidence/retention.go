package evidence

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/evidence"
	"github.com/wardsec/ward/pkg/logkey"
)

// Retention: HIPAA asks for six years of documentation, so no controller keeps less.
const (
	MinRetentionYears     = 6
	DefaultRetentionYears = MinRetentionYears
)

// Record types of retention.
const (
	// TypeArchived: records were written to an archive bundle that the controller
	// verified. Subject: the tenant; data: first_seq, last_seq, head, manifest_sha256, file.
	TypeArchived = "log.archived"
	// TypePruned: archived records past the retention period left the live log. Subject:
	// the tenant; data: through_seq, head, archives (manifest SHA-256s), retention_years.
	TypePruned = "log.pruned"
)

// CheckRetention returns an error naming the minimum when years is below it.
func CheckRetention(years int) error {
	if years < MinRetentionYears {
		return fmt.Errorf("evidence retention of %d years is below the minimum of %d: HIPAA "+
			"asks for six years of documentation", years, MinRetentionYears)
	}
	return nil
}

// Retention errors; the API answers FailedPrecondition for them.
var (
	// ErrNothingToArchive: no signed checkpoint after the last archive lies before the cut.
	ErrNothingToArchive = errors.New("nothing to archive")
	// ErrNotPrunable: no archived record is past the retention period, or none is archived.
	ErrNotPrunable = errors.New("nothing may be pruned")
)

// ArchiverConfig configures an Archiver.
type ArchiverConfig struct {
	Store     store.Evidence          // required
	Retention store.EvidenceRetention // required
	Exporter  *Exporter               // required: writes the archive bundles
	Recorder  Recorder                // required: log.archived and log.pruned records
	Roots     *x509.CertPool          // required: the CA the archives are verified against
	Dir       string                  // required: where archive files are kept
	Years     int                     // retention in years; zero means the default
	Clock     func() time.Time        // nil means time.Now
	Log       *slog.Logger            // nil discards
}

// Archiver writes archives of the oldest records and prunes archived records past the
// retention period. Its methods are safe for concurrent use (one runs at a time).
type Archiver struct {
	cfg ArchiverConfig
	mu  sync.Mutex
}

// NewArchiver returns an Archiver; it refuses a retention below the minimum.
func NewArchiver(cfg ArchiverConfig) (*Archiver, error) {
	if cfg.Store == nil || cfg.Retention == nil || cfg.Exporter == nil ||
		cfg.Recorder == nil || cfg.Roots == nil || cfg.Dir == "" {
		return nil, errors.New("evidence: NewArchiver: Store, Retention, Exporter, " +
			"Recorder, Roots and Dir are required")
	}
	if cfg.Years == 0 {
		cfg.Years = DefaultRetentionYears
	}
	if err := CheckRetention(cfg.Years); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Archiver{cfg: cfg}, nil
}

// Years returns the retention period in years.
func (a *Archiver) Years() int { return a.cfg.Years }

// ArchiveResult is what Archive wrote.
type ArchiveResult struct {
	Archive store.EvidenceArchive
	Summary ExportSummary
}

// Archive writes the records of tenant recorded before the time before, from the end of
// its previous archive (or the first record) to the newest signed checkpoint among them,
// to an archive bundle in the archive directory. It verifies the file against the CA,
// records log.archived naming its manifest's SHA-256 and range, and stores its
// description. ErrNothingToArchive when no checkpoint qualifies.
func (a *Archiver) Archive(ctx context.Context, tenant string, before time.Time,
	progress Progress) (ArchiveResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()

	start, err := a.archivedThrough(ctx, tenant)
	if err != nil {
		return ArchiveResult{}, err
	}
	cps, err := a.cfg.Store.ListCheckpoints(ctx, tenant, 0)
	if err != nil {
		return ArchiveResult{}, fmt.Errorf("archive: %w", err)
	}
	end, endTime, err := a.lastCheckpointBefore(ctx, tenant, cps, start, before)
	if err != nil {
		return ArchiveResult{}, err
	}

	if err := os.MkdirAll(a.cfg.Dir, 0o700); err != nil {
		return ArchiveResult{}, fmt.Errorf("archive: %w", err)
	}
	tmp, err := os.CreateTemp(a.cfg.Dir, ".archive-*")
	if err != nil {
		return ArchiveResult{}, fmt.Errorf("archive: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	defer tmp.Close()
	sum, err := a.cfg.Exporter.writeRange(ctx, tmp, tenant, start+1, end.Size, cps, progress)
	if err != nil {
		return ArchiveResult{}, fmt.Errorf("archive: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return ArchiveResult{}, fmt.Errorf("archive: %w", err)
	}
	rep, err := a.verifyFile(tmp.Name(), start+1, end)
	if err != nil {
		return ArchiveResult{}, fmt.Errorf("archive: the archive written does not verify: %w",
			err)
	}
	name := fmt.Sprintf("%s-%020d-%020d.tar.gz", tenant, start+1, end.Size)
	if err := os.Rename(tmp.Name(), filepath.Join(a.cfg.Dir, name)); err != nil {
		return ArchiveResult{}, fmt.Errorf("archive: %w", err)
	}
	if err := syncDir(a.cfg.Dir); err != nil {
		return ArchiveResult{}, fmt.Errorf("archive: %w", err)
	}
	info, err := os.Stat(filepath.Join(a.cfg.Dir, name))
	if err != nil {
		return ArchiveResult{}, fmt.Errorf("archive: %w", err)
	}

	arch := store.EvidenceArchive{Tenant: tenant, FirstSeq: start + 1, LastSeq: end.Size,
		Head: end.Head, LastTime: endTime, ManifestSHA256: rep.ManifestSHA256, File: name,
		Created: a.cfg.Clock().UTC(), Size: info.Size()}
	_, err = a.cfg.Recorder.Record(ctx, Entry{Tenant: tenant, Type: TypeArchived,
		Actor: Actor{Kind: ActorController, ID: KeyName}, Subject: tenant,
		Data: map[string]any{"first_seq": arch.FirstSeq, "last_seq": arch.LastSeq,
			"head": evidence.Hash(arch.Head).String(), "manifest_sha256": arch.ManifestSHA256,
			"file": name, "last_time": endTime.Format(time.RFC3339Nano)}})
	if err != nil {
		return ArchiveResult{}, fmt.Errorf("archive: %w", err)
	}
	if err := a.cfg.Retention.PutEvidenceArchive(ctx, arch); err != nil {
		return ArchiveResult{}, fmt.Errorf("archive: %w", err)
	}
	a.cfg.Log.Info("evidence archived", logkey.Tenant, tenant, "first_seq", arch.FirstSeq,
		"last_seq", arch.LastSeq, "file", name)
	return ArchiveResult{Archive: arch, Summary: sum}, nil
}

// archivedThrough returns the last record archived or pruned (0 when none).
func (a *Archiver) archivedThrough(ctx context.Context, tenant string) (uint64, error) {
	base, err := a.cfg.Retention.EvidenceBase(ctx, tenant)
	if err != nil {
		return 0, fmt.Errorf("archive: %w", err)
	}
	archives, err := a.cfg.Retention.ListEvidenceArchives(ctx, tenant)
	if err != nil {
		return 0, fmt.Errorf("archive: %w", err)
	}
	through := base.Size
	if n := len(archives); n > 0 {
		through = max(through, archives[n-1].LastSeq)
	}
	return through, nil
}

// lastCheckpointBefore returns the newest checkpoint after record start whose last
// record was recorded before the time before, with that record's time.
func (a *Archiver) lastCheckpointBefore(ctx context.Context, tenant string,
	cps []store.EvidenceCheckpoint, start uint64, before time.Time) (
	store.EvidenceCheckpoint, time.Time, error) {
	var found store.EvidenceCheckpoint
	var foundTime time.Time
	for _, cp := range cps {
		if cp.Size <= start {
			continue
		}
		t, err := a.recordTime(ctx, tenant, cp.Size)
		if err != nil {
			return found, foundTime, err
		}
		if !t.Before(before) {
			break
		}
		found, foundTime = cp, t
	}
	if found.Size == 0 {
		return found, foundTime, fmt.Errorf("%w: no signed checkpoint after record %d covers "+
			"only records before %s", ErrNothingToArchive, start, before.UTC().Format(time.RFC3339))
	}
	return found, foundTime, nil
}

func (a *Archiver) recordTime(ctx context.Context, tenant string, seq uint64) (time.Time, error) {
	recs, err := a.cfg.Store.ListEvidence(ctx, tenant, seq-1, 1)
	if err != nil {
		return time.Time{}, fmt.Errorf("archive: %w", err)
	}
	if len(recs) != 1 || recs[0].Seq != seq {
		return time.Time{}, fmt.Errorf("archive: record %d missing", seq)
	}
	r, err := evidence.ParseBody(recs[0].Body)
	if err != nil {
		return time.Time{}, fmt.Errorf("archive: record %d: %w", seq, err)
	}
	return r.Time, nil
}

// verifyFile verifies the archive file against the CA and checks that it holds records
// first to end.Size, ending at that checkpoint.
func (a *Archiver) verifyFile(path string, first uint64, end store.EvidenceCheckpoint) (
	evidence.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return evidence.Report{}, err
	}
	defer f.Close()
	rep, err := evidence.VerifyReader(f, evidence.VerifyOptions{Roots: a.cfg.Roots}, nil)
	if err != nil {
		return rep, err
	}
	if rep.FirstSeq != first || rep.LastSeq != end.Size || rep.LastCheckpoint != end.Size ||
		rep.Head != end.Head || rep.Tenant != end.Tenant {
		return rep, fmt.Errorf("holds records %d to %d of %q (last checkpoint %d), want %d "+
			"to %d", rep.FirstSeq, rep.LastSeq, rep.Tenant, rep.LastCheckpoint, first, end.Size)
	}
	return rep, nil
}

// OpenArchive opens an archive's file for reading.
func (a *Archiver) OpenArchive(arch store.EvidenceArchive) (*os.File, error) {
	if arch.File != filepath.Base(arch.File) {
		return nil, fmt.Errorf("archive file %q: not a plain name", arch.File)
	}
	return os.Open(filepath.Join(a.cfg.Dir, arch.File))
}

// PruneResult is what Prune removed.
type PruneResult struct {
	Base     store.EvidenceHead // records up to Base.Size are gone; the live log chains to Hash
	Removed  uint64
	Archives []store.EvidenceArchive // the archives holding what is gone
	Cutoff   time.Time               // records before it were past retention
}

// Prune removes from the live log the records that are archived and recorded before
// now less the retention period, up to the end of the newest such archive. It first
// verifies every archive holding them again (file present, manifest as recorded,
// contiguous up to the live log) and records log.pruned. ErrNotPrunable when nothing
// qualifies, naming why.
func (a *Archiver) Prune(ctx context.Context, tenant string) (PruneResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()

	now := a.cfg.Clock().UTC()
	res := PruneResult{Cutoff: now.AddDate(-a.cfg.Years, 0, 0)}
	base, err := a.cfg.Retention.EvidenceBase(ctx, tenant)
	if err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	archives, err := a.cfg.Retention.ListEvidenceArchives(ctx, tenant)
	if err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	var pending []store.EvidenceArchive // archives past base, oldest first
	for _, arch := range archives {
		if arch.LastSeq > base.Size {
			pending = append(pending, arch)
		}
	}
	if len(pending) == 0 {
		return res, fmt.Errorf("%w: no archive holds records after %d (archive first: "+
			"wardctl evidence archive)", ErrNotPrunable, base.Size)
	}
	n := 0 // archives to prune through
	for n < len(pending) && pending[n].LastTime.Before(res.Cutoff) {
		n++
	}
	if n == 0 {
		return res, fmt.Errorf("%w: the oldest archived records not yet pruned (%d to %d) "+
			"were recorded until %s, within the retention period of %d years (cutoff %s)",
			ErrNotPrunable, pending[0].FirstSeq, pending[0].LastSeq,
			pending[0].LastTime.Format(time.RFC3339), a.cfg.Years,
			res.Cutoff.Format(time.RFC3339))
	}
	next := base.Size + 1
	var hashes []string
	for _, arch := range pending[:n] {
		if arch.FirstSeq > next {
			return res, fmt.Errorf("prune: records %d to %d are in no archive", next,
				arch.FirstSeq-1)
		}
		if err := a.recheck(arch); err != nil {
			return res, fmt.Errorf("prune: archive %s: %w", arch.File, err)
		}
		next = arch.LastSeq + 1
		hashes = append(hashes, arch.ManifestSHA256)
	}
	last := pending[n-1]
	res.Base = store.EvidenceHead{Size: last.LastSeq, Hash: last.Head}
	res.Archives = pending[:n]
	res.Removed = last.LastSeq - base.Size

	_, err = a.cfg.Recorder.Record(ctx, Entry{Tenant: tenant, Type: TypePruned,
		Actor: Actor{Kind: ActorController, ID: KeyName}, Subject: tenant,
		Data: map[string]any{"through_seq": last.LastSeq,
			"head": evidence.Hash(last.Head).String(), "archives": hashes,
			"retention_years": a.cfg.Years}})
	if err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	if err := a.cfg.Retention.PruneEvidence(ctx, tenant, res.Base); err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	a.cfg.Log.Info("evidence pruned", logkey.Tenant, tenant, "through_seq", last.LastSeq,
		"removed", res.Removed)
	return res, nil
}

// recheck verifies an archive's file again and compares it with its description.
func (a *Archiver) recheck(arch store.EvidenceArchive) error {
	path := filepath.Join(a.cfg.Dir, filepath.Base(arch.File))
	rep, err := a.verifyFile(path, arch.FirstSeq, store.EvidenceCheckpoint{
		Tenant: arch.Tenant, Size: arch.LastSeq, Head: arch.Head})
	if err != nil {
		return err
	}
	if rep.ManifestSHA256 != arch.ManifestSHA256 {
		return fmt.Errorf("manifest SHA-256 %s, recorded %s", rep.ManifestSHA256,
			arch.ManifestSHA256)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
