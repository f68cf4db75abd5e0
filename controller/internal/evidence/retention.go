package evidence

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
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
	// ErrArchiveInvalid: an archive file is missing or no longer verifies, or does not
	// chain to the archive before it; nothing is pruned.
	ErrArchiveInvalid = errors.New("archive does not verify")
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

// Archives returns the tenant's archives, oldest first, and the live log's base (records
// up to base.Size were pruned; zero when none were).
func (a *Archiver) Archives(ctx context.Context, tenant string) ([]store.EvidenceArchive,
	store.EvidenceHead, error) {
	archives, err := a.cfg.Retention.ListEvidenceArchives(ctx, tenant)
	if err != nil {
		return nil, store.EvidenceHead{}, fmt.Errorf("archives: %w", err)
	}
	base, err := a.cfg.Retention.EvidenceBase(ctx, tenant)
	if err != nil {
		return nil, base, fmt.Errorf("archives: %w", err)
	}
	return archives, base, nil
}

// ArchiveResult is what Archive wrote.
type ArchiveResult struct {
	Archive store.EvidenceArchive
	Summary ExportSummary
}

// ArchiveParams say what Archive writes.
type ArchiveParams struct {
	Tenant   string
	Before   time.Time // records recorded before it; required
	By       Actor     // who asked, named in the log.archived record; zero: the controller
	Progress Progress  // told how far the writing is; nil: not told
}

// Archive writes the records of p.Tenant recorded before p.Before, from the end of its
// previous archive (or the first record) to the newest signed checkpoint among them, to
// an archive bundle in the archive directory (mode 0600). It verifies the file against
// the CA, records log.archived naming its manifest's SHA-256 and range, and stores its
// description. ErrNothingToArchive when no checkpoint qualifies.
func (a *Archiver) Archive(ctx context.Context, p ArchiveParams) (ArchiveResult, error) {
	if p.Tenant == "" || p.Before.IsZero() {
		return ArchiveResult{}, errors.New("archive: tenant and time required")
	}
	a.mu.Lock()
	defer a.mu.Unlock()

	start, err := a.archivedThrough(ctx, p.Tenant)
	if err != nil {
		return ArchiveResult{}, err
	}
	cps, err := a.cfg.Store.ListCheckpoints(ctx, p.Tenant, 0)
	if err != nil {
		return ArchiveResult{}, fmt.Errorf("archive: %w", err)
	}
	end, endTime, err := a.lastCheckpointBefore(ctx, p.Tenant, cps, start, p.Before)
	if err != nil {
		return ArchiveResult{}, err
	}

	name, rep, sum, err := a.writeFile(ctx, p, start+1, end, cps)
	if err != nil {
		return ArchiveResult{}, fmt.Errorf("archive: %w", err)
	}
	info, err := os.Stat(filepath.Join(a.cfg.Dir, name))
	if err != nil {
		return ArchiveResult{}, fmt.Errorf("archive: %w", err)
	}

	arch := store.EvidenceArchive{Tenant: p.Tenant, FirstSeq: start + 1, LastSeq: end.Size,
		Head: end.Head, LastTime: endTime, ManifestSHA256: rep.ManifestSHA256, File: name,
		Created: a.cfg.Clock().UTC(), Size: info.Size()}
	_, err = a.cfg.Recorder.Record(ctx, Entry{Tenant: p.Tenant, Type: TypeArchived,
		Actor: actorOr(p.By), Subject: p.Tenant,
		Data: map[string]any{"first_seq": arch.FirstSeq, "last_seq": arch.LastSeq,
			"head": evidence.Hash(arch.Head).String(), "manifest_sha256": arch.ManifestSHA256,
			"file": name, "last_time": endTime.Format(time.RFC3339Nano)}})
	if err != nil {
		return ArchiveResult{}, fmt.Errorf("archive: %w", err)
	}
	if err := a.cfg.Retention.PutEvidenceArchive(ctx, arch); err != nil {
		return ArchiveResult{}, fmt.Errorf("archive: %w", err)
	}
	a.cfg.Log.Info("evidence archived", logkey.Tenant, p.Tenant, "first_seq", arch.FirstSeq,
		"last_seq", arch.LastSeq, "file", name, "by", actorOr(p.By).ID)
	return ArchiveResult{Archive: arch, Summary: sum}, nil
}

// writeFile writes the archive of records first to end.Size to a temporary file, verifies
// it and renames it into place, named by tenant, range and manifest (so that an archive
// written again after a crash never replaces one named in a log.archived record).
func (a *Archiver) writeFile(ctx context.Context, p ArchiveParams, first uint64,
	end store.EvidenceCheckpoint, cps []store.EvidenceCheckpoint) (string, evidence.Report,
	ExportSummary, error) {
	var rep evidence.Report
	if err := os.MkdirAll(a.cfg.Dir, 0o700); err != nil {
		return "", rep, ExportSummary{}, err
	}
	tmp, err := os.CreateTemp(a.cfg.Dir, ".archive-*")
	if err != nil {
		return "", rep, ExportSummary{}, err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	defer tmp.Close()
	sum, err := a.cfg.Exporter.writeRange(ctx, tmp, p.Tenant, first, end.Size, cps,
		p.Progress)
	if err != nil {
		return "", rep, sum, err
	}
	if err := tmp.Sync(); err != nil {
		return "", rep, sum, err
	}
	if rep, err = a.verifyFile(tmp.Name(), first, end); err != nil {
		return "", rep, sum, fmt.Errorf("the archive written does not verify: %w", err)
	}
	name := fmt.Sprintf("%s-%020d-%020d-%.16s.tar.gz", p.Tenant, first, end.Size,
		rep.ManifestSHA256)
	if err := os.Rename(tmp.Name(), filepath.Join(a.cfg.Dir, name)); err != nil {
		return "", rep, sum, err
	}
	if err := syncDir(a.cfg.Dir); err != nil {
		return "", rep, sum, err
	}
	return name, rep, sum, nil
}

// actorOr returns by, or the controller when by is zero.
func actorOr(by Actor) Actor {
	if by.Kind == "" {
		return Actor{Kind: ActorController, ID: KeyName}
	}
	return by
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
// record was recorded before the time before, with that record's time. Record times never
// go backwards, so it searches the checkpoints by halves (a few record reads, not one per
// checkpoint).
func (a *Archiver) lastCheckpointBefore(ctx context.Context, tenant string,
	cps []store.EvidenceCheckpoint, start uint64, before time.Time) (
	store.EvidenceCheckpoint, time.Time, error) {
	i := sort.Search(len(cps), func(i int) bool { return cps[i].Size > start })
	cand := cps[i:]
	var readErr error
	times := map[int]time.Time{}
	n := sort.Search(len(cand), func(j int) bool {
		if readErr != nil {
			return true
		}
		t, err := a.recordTime(ctx, tenant, cand[j].Size)
		if err != nil {
			readErr = err
			return true
		}
		times[j] = t
		return !t.Before(before)
	}) // cand[:n] end before the time
	if readErr != nil {
		return store.EvidenceCheckpoint{}, time.Time{}, readErr
	}
	if n == 0 {
		return store.EvidenceCheckpoint{}, time.Time{}, fmt.Errorf("%w: no signed "+
			"checkpoint after record %d covers only records before %s", ErrNothingToArchive,
			start, before.UTC().Format(time.RFC3339))
	}
	found := cand[n-1]
	t, ok := times[n-1]
	if !ok {
		var err error
		if t, err = a.recordTime(ctx, tenant, found.Size); err != nil {
			return found, t, err
		}
	}
	return found, t, nil
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

// OpenArchive opens an archive's file for reading; the caller closes it.
func (a *Archiver) OpenArchive(arch store.EvidenceArchive) (*os.File, error) {
	if arch.File != filepath.Base(arch.File) || arch.File == "." || arch.File == ".." {
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
// finishes a prune cut short, then verifies every archive holding the records again (file
// present and verifying against the CA, manifest and range as recorded, each chaining to
// the one before and the first to the live log's base), records log.pruned naming by, and
// only then removes them. ErrNotPrunable when nothing qualifies, naming why;
// ErrArchiveInvalid when an archive fails its check.
func (a *Archiver) Prune(ctx context.Context, tenant string, by Actor) (PruneResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()

	now := a.cfg.Clock().UTC()
	res := PruneResult{Cutoff: now.AddDate(-a.cfg.Years, 0, 0)}
	base, err := a.cfg.Retention.EvidenceBase(ctx, tenant)
	if err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	if base.Size > 0 { // a prune cut short left records up to base: remove them now
		if err := a.cfg.Retention.PruneEvidence(ctx, tenant, base); err != nil {
			return res, fmt.Errorf("prune: finish the prune to %d: %w", base.Size, err)
		}
	}
	pending, err := a.prunable(ctx, tenant, base, res.Cutoff)
	if err != nil {
		return res, err
	}

	prev := base
	var hashes []string
	for _, arch := range pending {
		if arch.FirstSeq != prev.Size+1 {
			return res, fmt.Errorf("prune: records %d to %d are in no archive (archive %s "+
				"starts at %d)", prev.Size+1, arch.FirstSeq-1, arch.File, arch.FirstSeq)
		}
		if err := a.recheck(arch, prev.Hash); err != nil {
			return res, fmt.Errorf("prune: %w: %s: %w", ErrArchiveInvalid, arch.File, err)
		}
		prev = store.EvidenceHead{Size: arch.LastSeq, Hash: arch.Head}
		hashes = append(hashes, arch.ManifestSHA256)
	}
	res.Base, res.Archives, res.Removed = prev, pending, prev.Size-base.Size

	_, err = a.cfg.Recorder.Record(ctx, Entry{Tenant: tenant, Type: TypePruned,
		Actor: actorOr(by), Subject: tenant,
		Data: map[string]any{"through_seq": prev.Size,
			"head": evidence.Hash(prev.Hash).String(), "archives": hashes,
			"retention_years": a.cfg.Years, "cutoff": res.Cutoff.Format(time.RFC3339Nano)}})
	if err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	if err := a.cfg.Retention.PruneEvidence(ctx, tenant, res.Base); err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	a.cfg.Log.Info("evidence pruned", logkey.Tenant, tenant, "through_seq", prev.Size,
		"removed", res.Removed, "by", actorOr(by).ID)
	return res, nil
}

// prunable returns the archives after base whose records all lie before cutoff, oldest
// first, or ErrNotPrunable.
func (a *Archiver) prunable(ctx context.Context, tenant string, base store.EvidenceHead,
	cutoff time.Time) ([]store.EvidenceArchive, error) {
	archives, err := a.cfg.Retention.ListEvidenceArchives(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	var pending []store.EvidenceArchive // archives past base, oldest first
	for _, arch := range archives {
		if arch.LastSeq > base.Size {
			pending = append(pending, arch)
		}
	}
	if len(pending) == 0 {
		return nil, fmt.Errorf("%w: no archive holds records after %d (archive first: "+
			"wardctl evidence archive)", ErrNotPrunable, base.Size)
	}
	n := 0 // archives to prune through
	for n < len(pending) && pending[n].LastTime.Before(cutoff) {
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: the oldest archived records not yet pruned (%d to %d) "+
			"were recorded until %s, within the retention period of %d years (cutoff %s)",
			ErrNotPrunable, pending[0].FirstSeq, pending[0].LastSeq,
			pending[0].LastTime.Format(time.RFC3339), a.cfg.Years,
			cutoff.Format(time.RFC3339))
	}
	return pending[:n], nil
}

// recheck verifies an archive's file again and compares it with its description: range,
// last head and time, manifest, and that its first record chains to prev.
func (a *Archiver) recheck(arch store.EvidenceArchive, prev [32]byte) error {
	path := filepath.Join(a.cfg.Dir, filepath.Base(arch.File))
	rep, err := a.verifyFile(path, arch.FirstSeq, store.EvidenceCheckpoint{
		Tenant: arch.Tenant, Size: arch.LastSeq, Head: arch.Head})
	if err != nil {
		return err
	}
	switch {
	case rep.ManifestSHA256 != arch.ManifestSHA256:
		return fmt.Errorf("manifest SHA-256 %s, recorded %s", rep.ManifestSHA256,
			arch.ManifestSHA256)
	case !rep.LastTime.Equal(arch.LastTime):
		return fmt.Errorf("last record at %s, recorded %s", rep.LastTime.Format(time.RFC3339Nano),
			arch.LastTime.Format(time.RFC3339Nano))
	case rep.Base != evidence.Hash(prev):
		return fmt.Errorf("record %d does not chain to the record before it", arch.FirstSeq)
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
