package evidence

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/evidence"
	"github.com/wardsec/ward/pkg/pki"
)

// retentionEnv is an env whose records are made at a fake time, one minute apart, with
// an Archiver on a clock of its own.
type retentionEnv struct {
	*env
	recNow time.Time // time of the next record
	now    time.Time // the archiver's clock
	arch   *Archiver
	dir    string
}

var epoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func newRetentionEnv(t *testing.T) *retentionEnv {
	t.Helper()
	r := &retentionEnv{env: newEnv(t, 1<<40), recNow: epoch, now: epoch.Add(time.Hour)}
	r.log.cfg.Clock = func() time.Time { return r.recNow }
	r.dir = filepath.Join(r.env.dir, "evidence-archives")
	r.arch = r.archiver(t, r.store)
	return r
}

func (r *retentionEnv) archiver(t *testing.T, ret store.EvidenceRetention) *Archiver {
	t.Helper()
	a, err := NewArchiver(ArchiverConfig{Store: r.store, Retention: ret,
		Exporter: &Exporter{Store: r.store, Key: r.key}, Recorder: r.log,
		Roots: r.ca.Roots(), Dir: r.dir, Clock: func() time.Time { return r.now },
		Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// record appends n records to clinic, one a minute, and signs a checkpoint after every
// ten of them.
func (r *retentionEnv) record(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		r.recNow = r.recNow.Add(time.Minute)
		_, err := r.log.Record(ctx, Entry{Tenant: "clinic", Type: TypeAgentRenewed,
			Actor: Actor{Kind: ActorAgent, ID: "a1"}, Subject: "a1"})
		if err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			r.recNow = r.recNow.Add(time.Minute) // the checkpoint's own record
			if _, err := r.cp.Checkpoint(ctx, "clinic"); err != nil {
				t.Fatal(err)
			}
		}
	}
}

var admin = Actor{Kind: ActorOperator, ID: "admin"}

// verifyFile verifies an archive or bundle file against the CA.
func (r *retentionEnv) verifyFile(t *testing.T, path string) evidence.Report {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := evidence.VerifyReader(f, evidence.VerifyOptions{Roots: r.ca.Roots()}, nil)
	if err != nil {
		t.Fatalf("verify %s: %v", filepath.Base(path), err)
	}
	return rep
}

// live exports the live log and verifies it.
func (r *retentionEnv) live(t *testing.T) evidence.Report {
	t.Helper()
	b, _ := r.export(t, ExportQuery{Tenant: "clinic"})
	rep, err := b.Verify(evidence.VerifyOptions{Roots: r.ca.Roots()})
	if err != nil {
		t.Fatalf("verify the live log: %v", err)
	}
	return rep
}

// lastOfType returns the newest record of typ in clinic's live log.
func (r *retentionEnv) lastOfType(t *testing.T, typ string) (evidence.Record, bool) {
	t.Helper()
	recs, err := r.store.ListEvidence(context.Background(), "clinic", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(recs) - 1; i >= 0; i-- {
		rec, err := evidence.ParseBody(recs[i].Body)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type == typ {
			return rec, true
		}
	}
	return evidence.Record{}, false
}

// TestArchiveWritesAVerifiedArchive: an archive ends at the newest checkpoint before the
// time, verifies on its own against the CA, is kept 0600 in a 0700 directory, and is
// recorded as log.archived by the operator who asked; the next one starts where it ends.
func TestArchiveWritesAVerifiedArchive(t *testing.T) {
	r := newRetentionEnv(t)
	ctx := context.Background()
	r.record(t, 35) // record n at epoch + n minutes; checkpoints at 10, 21, 32
	before := epoch.Add(25 * time.Minute)

	res, err := r.arch.Archive(ctx, ArchiveParams{Tenant: "clinic", Before: before, By: admin})
	if err != nil {
		t.Fatalf("Archive: %v", err)
	}
	a := res.Archive
	if a.FirstSeq != 1 || a.LastSeq != 21 || !a.LastTime.Before(before) {
		t.Fatalf("archive %+v, want records 1 to 21", a)
	}
	path := filepath.Join(r.dir, a.File)
	rep := r.verifyFile(t, path)
	if rep.FirstSeq != 1 || rep.LastSeq != 21 || rep.LastCheckpoint != 21 ||
		rep.Unsigned != 0 || rep.ManifestSHA256 != a.ManifestSHA256 ||
		rep.Head != evidence.Hash(a.Head) {
		t.Errorf("archive report %+v", rep)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("archive file: %v, %v", fi, err)
	}
	if fi, err := os.Stat(r.dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("archive directory: %v, %v", fi, err)
	}
	rec, ok := r.lastOfType(t, TypeArchived)
	if !ok || rec.Actor.ID != "admin" || rec.Actor.Kind != string(ActorOperator) ||
		!bytes.Contains(rec.Data, []byte(a.ManifestSHA256)) {
		t.Errorf("log.archived record %+v", rec)
	}
	listed, _ := r.store.ListEvidenceArchives(ctx, "clinic")
	if len(listed) != 1 || listed[0] != a {
		t.Errorf("stored archives %+v", listed)
	}

	// nothing new before the same time; the next archive continues the first
	_, err = r.arch.Archive(ctx, ArchiveParams{Tenant: "clinic", Before: before, By: admin})
	if !errors.Is(err, ErrNothingToArchive) {
		t.Errorf("second Archive = %v, want ErrNothingToArchive", err)
	}
	res2, err := r.arch.Archive(ctx, ArchiveParams{Tenant: "clinic", Before: r.recNow,
		By: admin})
	if err != nil {
		t.Fatal(err)
	}
	rep2 := r.verifyFile(t, filepath.Join(r.dir, res2.Archive.File))
	if err := rep2.Continues(rep); err != nil || res2.Archive.FirstSeq != 22 {
		t.Errorf("second archive %+v: %v", res2.Archive, err)
	}
	// a tenant without a checkpoint has nothing to archive
	_, err = r.arch.Archive(ctx, ArchiveParams{Tenant: "other", Before: r.recNow, By: admin})
	if !errors.Is(err, ErrNothingToArchive) {
		t.Errorf("Archive of an empty log = %v, want ErrNothingToArchive", err)
	}
}

// TestPruneOnlyArchivedAndOld: records younger than the cutoff are refused even when
// archived; archived records past it are removed, recorded first as log.pruned; the live
// log still verifies and chains to the archive; nothing unarchived is removed.
func TestPruneOnlyArchivedAndOld(t *testing.T) {
	r := newRetentionEnv(t)
	ctx := context.Background()
	r.record(t, 35)
	res, err := r.arch.Archive(ctx, ArchiveParams{Tenant: "clinic",
		Before: epoch.Add(25 * time.Minute), By: admin})
	if err != nil {
		t.Fatal(err)
	}
	archRep := r.verifyFile(t, filepath.Join(r.dir, res.Archive.File))
	head, _ := r.store.EvidenceHead(ctx, "clinic")

	tests := []struct {
		name string
		now  time.Time
	}{
		{"one year later", epoch.AddDate(1, 0, 0)},
		{"exactly six years after the last", res.Archive.LastTime.AddDate(6, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.now = tt.now
			_, err := r.arch.Prune(ctx, "clinic", admin)
			if !errors.Is(err, ErrNotPrunable) {
				t.Fatalf("Prune = %v, want ErrNotPrunable", err)
			}
			if b, _ := r.store.EvidenceBase(ctx, "clinic"); b.Size != 0 {
				t.Errorf("base moved to %d", b.Size)
			}
			if _, ok := r.lastOfType(t, TypePruned); ok {
				t.Error("a refused prune was recorded")
			}
		})
	}

	r.now = res.Archive.LastTime.AddDate(6, 0, 0).Add(time.Nanosecond)
	pr, err := r.arch.Prune(ctx, "clinic", admin)
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if pr.Base.Size != 21 || pr.Removed != 21 || len(pr.Archives) != 1 {
		t.Errorf("prune result %+v", pr)
	}
	rec, ok := r.lastOfType(t, TypePruned)
	if !ok || rec.Actor.ID != "admin" ||
		!bytes.Contains(rec.Data, []byte(res.Archive.ManifestSHA256)) {
		t.Errorf("log.pruned record %+v", rec)
	}
	if recs, _ := r.store.ListEvidence(ctx, "clinic", 0, 1); len(recs) != 1 || recs[0].Seq != 22 {
		t.Errorf("live log starts at %+v, want 22", recs)
	}
	if h, _ := r.store.EvidenceHead(ctx, "clinic"); h.Size <= head.Size {
		t.Errorf("head %d, was %d: the prune was not recorded", h.Size, head.Size)
	}

	live := r.live(t)
	if err := live.Continues(archRep); err != nil {
		t.Errorf("live log after the archive: %v", err)
	}
	// everything left is unarchived: nothing more goes, however late
	r.now = r.now.AddDate(50, 0, 0)
	if _, err := r.arch.Prune(ctx, "clinic", admin); !errors.Is(err, ErrNotPrunable) {
		t.Errorf("Prune without a new archive = %v, want ErrNotPrunable", err)
	}
	if recs, _ := r.store.ListEvidence(ctx, "clinic", 0, 1); len(recs) != 1 || recs[0].Seq != 22 {
		t.Errorf("live log starts at %+v, want 22", recs)
	}
}

// cutShort is a store whose prunes stop right after the base is stored, like a
// controller killed in the middle of one.
type cutShort struct {
	store.EvidenceRetention
}

func (c cutShort) PruneEvidence(ctx context.Context, tenant string,
	base store.EvidenceHead) error {
	return c.EvidenceRetention.PruneEvidence(&errAfter{Context: ctx, n: 1}, tenant, base)
}

// errAfter is a context that is cancelled after its Err has been asked n times.
type errAfter struct {
	context.Context
	n int
}

func (c *errAfter) Err() error {
	if c.n--; c.n < 0 {
		return context.Canceled
	}
	return c.Context.Err()
}

// TestPruneCutShortIsFinished: a prune that stopped after storing its base leaves a log
// that already starts after the base; the next Prune finishes it and the log verifies and
// chains to the archive.
func TestPruneCutShortIsFinished(t *testing.T) {
	r := newRetentionEnv(t)
	ctx := context.Background()
	r.record(t, 25)
	res, err := r.arch.Archive(ctx, ArchiveParams{Tenant: "clinic", Before: r.recNow,
		By: admin})
	if err != nil {
		t.Fatal(err)
	}
	r.now = r.recNow.AddDate(7, 0, 0)

	if _, err := r.archiver(t, cutShort{r.store}).Prune(ctx, "clinic", admin); err == nil {
		t.Fatal("the cut-short prune succeeded")
	}
	if b, _ := r.store.EvidenceBase(ctx, "clinic"); b.Size != res.Archive.LastSeq {
		t.Fatalf("base %d after the cut-short prune, want %d", b.Size, res.Archive.LastSeq)
	}
	if recs, _ := r.store.ListEvidence(ctx, "clinic", 0, 1); len(recs) != 1 ||
		recs[0].Seq != res.Archive.LastSeq+1 {
		t.Errorf("readers see %+v during the cut-short prune", recs)
	}

	_, err = r.arch.Prune(ctx, "clinic", admin)
	if !errors.Is(err, ErrNotPrunable) {
		t.Errorf("finishing Prune = %v, want ErrNotPrunable (finished, nothing new)", err)
	}
	archRep := r.verifyFile(t, filepath.Join(r.dir, res.Archive.File))
	if err := r.live(t).Continues(archRep); err != nil {
		t.Errorf("live log after the finished prune: %v", err)
	}
}

// TestPruneRefusesBadArchive: an archive file changed, cut, replaced or gone makes Prune
// refuse with ErrArchiveInvalid, record nothing and remove nothing.
func TestPruneRefusesBadArchive(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, path, other string)
	}{
		{"changed byte", func(t *testing.T, path, _ string) {
			data, _ := os.ReadFile(path)
			data[len(data)/2] ^= 1
			os.WriteFile(path, data, 0o600)
		}},
		{"truncated", func(t *testing.T, path, _ string) { os.Truncate(path, 100) }},
		{"removed", func(t *testing.T, path, _ string) { os.Remove(path) }},
		{"replaced by the next archive", func(t *testing.T, path, other string) {
			os.Rename(other, path)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRetentionEnv(t)
			ctx := context.Background()
			r.record(t, 25)
			res, err := r.arch.Archive(ctx, ArchiveParams{Tenant: "clinic",
				Before: epoch.Add(15 * time.Minute), By: admin})
			if err != nil {
				t.Fatal(err)
			}
			res2, err := r.arch.Archive(ctx, ArchiveParams{Tenant: "clinic",
				Before: r.recNow, By: admin})
			if err != nil {
				t.Fatal(err)
			}
			tt.tamper(t, filepath.Join(r.dir, res.Archive.File),
				filepath.Join(r.dir, res2.Archive.File))
			r.now = r.recNow.AddDate(7, 0, 0)
			head, _ := r.store.EvidenceHead(ctx, "clinic")

			_, err = r.arch.Prune(ctx, "clinic", admin)
			if !errors.Is(err, ErrArchiveInvalid) ||
				!strings.Contains(err.Error(), res.Archive.File) {
				t.Fatalf("Prune = %v, want ErrArchiveInvalid naming the file", err)
			}
			if b, _ := r.store.EvidenceBase(ctx, "clinic"); b.Size != 0 {
				t.Errorf("base moved to %d", b.Size)
			}
			if h, _ := r.store.EvidenceHead(ctx, "clinic"); h != head {
				t.Errorf("head moved from %d to %d: something was recorded", head.Size, h.Size)
			}
			if recs, _ := r.store.ListEvidence(ctx, "clinic", 0, 1); len(recs) != 1 ||
				recs[0].Seq != 1 {
				t.Errorf("live log starts at %+v", recs)
			}
		})
	}
}

func TestCheckRetention(t *testing.T) {
	tests := []struct {
		years int
		ok    bool
	}{{-1, false}, {0, false}, {5, false}, {6, true}, {10, true}}
	for _, tt := range tests {
		if err := CheckRetention(tt.years); (err == nil) != tt.ok {
			t.Errorf("CheckRetention(%d) = %v", tt.years, err)
		}
	}
	_, err := NewArchiver(ArchiverConfig{Years: 5})
	if err == nil {
		t.Error("NewArchiver without its parts succeeded")
	}
}

// TestRetentionLogsAndErrorsHoldNoKey: what the Archiver logs and returns, on success and
// on refusal, holds none of the evidence key's or the CA's private key material.
func TestRetentionLogsAndErrorsHoldNoKey(t *testing.T) {
	r := newRetentionEnv(t)
	var logs bytes.Buffer
	r.arch.cfg.Log = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{
		Level: slog.LevelDebug}))
	ctx := context.Background()
	r.record(t, 25)
	var errs []string
	res, err := r.arch.Archive(ctx, ArchiveParams{Tenant: "clinic", Before: r.recNow,
		By: admin})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.arch.Archive(ctx, ArchiveParams{Tenant: "clinic", Before: r.recNow, By: admin})
	errs = append(errs, err.Error())
	_, err = r.arch.Prune(ctx, "clinic", admin)
	errs = append(errs, err.Error())
	os.Truncate(filepath.Join(r.dir, res.Archive.File), 200)
	r.now = r.recNow.AddDate(7, 0, 0)
	_, err = r.arch.Prune(ctx, "clinic", admin)
	errs = append(errs, err.Error())
	text := logs.String() + strings.Join(errs, "\n")

	path := filepath.Join(r.env.dir, "evidence", "key.pem")
	pemData, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pki.ParseKey(pemData); err != nil {
		t.Fatalf("%s is not the key: %v", path, err)
	}
	for _, line := range strings.Split(string(pemData), "\n") {
		if len(line) > 16 && !strings.HasPrefix(line, "-----") && strings.Contains(text, line) {
			t.Error("logs or errors hold a line of the evidence key")
		}
	}
	if strings.Contains(text, "PRIVATE KEY") {
		t.Error("logs or errors hold a private key")
	}
	if !strings.Contains(logs.String(), "evidence archived") {
		t.Errorf("logs: %s", logs.String())
	}
}
