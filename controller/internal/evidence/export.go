package evidence

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/evidence"
)

// ExportQuery selects the records of a bundle.
type ExportQuery struct {
	Tenant string
	From   time.Time // records at or after; zero: from the first
	To     time.Time // records at or before; zero: to the last
}

// ExportSummary says what a bundle holds.
type ExportSummary struct {
	FirstSeq, LastSeq uint64 // 0, 0 when no record matched
	Records           int
	Checkpoints       int
	Witnesses         int
}

// Exporter writes bundles. It is safe for concurrent use.
type Exporter struct {
	Store        store.Evidence // required
	Key          *Key           // required
	Checkpointer *Checkpointer  // when not nil, the head is checkpointed first
	Clock        func() time.Time
}

// exportPage is how many records one store read takes.
const exportPage = 4096

// Progress is told how far an export is: phase "selecting" (records read to find the
// range; total is the log's size), "hashing" and "writing" (the bundle's records, read
// twice; total is their number).
type Progress func(phase string, done, total uint64)

// Export writes the bundle of q to w: the records of the range, extended forward to the
// first checkpoint at or after its last record (so each one is covered by a signature;
// records after the newest checkpoint chain to it), the checkpoints within, their witness
// signatures, the evidence key and its chain. Records are read from the store in pages,
// twice (hashed for the manifest, then written), and never held all at once. progress,
// when not nil, is told how far it is.
func (x *Exporter) Export(ctx context.Context, w io.Writer, q ExportQuery,
	progress Progress) (ExportSummary, error) {
	if x.Checkpointer != nil {
		if _, err := x.Checkpointer.Checkpoint(ctx, q.Tenant); err != nil {
			return ExportSummary{}, fmt.Errorf("export: %w", err)
		}
	}
	head, err := x.Store.EvidenceHead(ctx, q.Tenant)
	if err != nil {
		return ExportSummary{}, fmt.Errorf("export: %w", err)
	}
	cps, err := x.Store.ListCheckpoints(ctx, q.Tenant, 0)
	if err != nil {
		return ExportSummary{}, fmt.Errorf("export: %w", err)
	}
	first, last, err := x.selectRange(ctx, q, head, cps, progress)
	if err != nil {
		return ExportSummary{}, err
	}
	return x.writeRange(ctx, w, q.Tenant, first, last, cps, progress)
}

// writeRange writes the bundle of records first to last (none when first is 0) with the
// checkpoints and witness signatures among them (and the checkpoint at first-1, which
// anchors the first record's prev).
func (x *Exporter) writeRange(ctx context.Context, w io.Writer, tenant string, first,
	last uint64, cps []store.EvidenceCheckpoint, progress Progress) (ExportSummary, error) {
	var sum ExportSummary
	c := evidence.BundleContents{Tenant: tenant, Created: x.now(), FirstSeq: first,
		LastSeq: last, PublicKey: x.Key.PublicPEM, Chain: x.Key.ChainPEM}
	if first > 0 {
		c.Lines = x.lines(ctx, tenant, first, last, progress)
		for _, cp := range cps {
			if cp.Size+1 >= first && cp.Size <= last {
				c.Checkpoints = append(c.Checkpoints, evidence.SignedCheckpoint{
					Checkpoint: evidence.Checkpoint{Tenant: cp.Tenant, Size: cp.Size,
						Head: cp.Head, Time: cp.Time}, Signature: cp.Signature})
			}
		}
		ws, err := x.Store.ListWitnesses(ctx, tenant, first-min(first, 2))
		if err != nil {
			return sum, fmt.Errorf("export: %w", err)
		}
		for _, wt := range ws {
			if wt.Size+1 >= first && wt.Size <= last {
				c.Witnesses = append(c.Witnesses, evidence.Witness{Tenant: wt.Tenant,
					Size: wt.Size, Head: wt.Head, WitnessID: wt.Agent, Time: wt.Time,
					Signature: wt.Signature, CertDER: wt.CertDER})
			}
		}
	}
	if err := evidence.WriteBundle(w, c, x.Key.Signer); err != nil {
		return sum, fmt.Errorf("export: %w", err)
	}
	sum = ExportSummary{FirstSeq: first, LastSeq: last, Checkpoints: len(c.Checkpoints),
		Witnesses: len(c.Witnesses)}
	if first > 0 {
		sum.Records = int(last - first + 1)
	}
	return sum, nil
}

// lines yields the bundle lines of records first to last, read in pages. A record
// missing (pruned meanwhile) fails with evidence.ErrRecordsChanged.
func (x *Exporter) lines(ctx context.Context, tenant string, first, last uint64,
	progress Progress) evidence.RecordLines {
	pass := 0
	return func(yield func([]byte) error) error {
		phase := "hashing"
		if pass++; pass > 1 {
			phase = "writing"
		}
		total := last - first + 1
		for after := first - 1; after < last; {
			recs, err := x.Store.ListEvidence(ctx, tenant, after, exportPage)
			if err != nil {
				return err
			}
			for _, r := range recs {
				if r.Seq > last {
					break
				}
				if r.Seq != after+1 {
					return evidence.ErrRecordsChanged
				}
				line := evidence.Line(r.Body, r.Hash)
				if err := yield(line); err != nil {
					return err
				}
				after = r.Seq
			}
			if progress != nil {
				progress(phase, after-first+1, total)
			}
			if len(recs) == 0 && after < last {
				return evidence.ErrRecordsChanged
			}
		}
		return nil
	}
}

func (x *Exporter) now() time.Time {
	if x.Clock != nil {
		return x.Clock()
	}
	return time.Now()
}

// selectRange returns the first and last record of q's bundle (see Export); 0, 0 when no
// record is in range. Without From and To it reads no record bodies.
func (x *Exporter) selectRange(ctx context.Context, q ExportQuery, head store.EvidenceHead,
	cps []store.EvidenceCheckpoint, progress Progress) (first, last uint64, err error) {
	if q.From.IsZero() && q.To.IsZero() {
		recs, err := x.Store.ListEvidence(ctx, q.Tenant, 0, 1)
		if err != nil {
			return 0, 0, fmt.Errorf("export: %w", err)
		}
		if len(recs) == 0 || head.Size == 0 {
			return 0, 0, nil
		}
		return recs[0].Seq, head.Size, nil
	}
	var inRange uint64 // the last record in range
	for after := uint64(0); ; {
		recs, err := x.Store.ListEvidence(ctx, q.Tenant, after, exportPage)
		if err != nil {
			return 0, 0, fmt.Errorf("export: %w", err)
		}
		for _, r := range recs {
			if r.Seq > head.Size {
				break
			}
			rec, err := evidence.ParseBody(r.Body)
			if err != nil {
				return 0, 0, fmt.Errorf("export: record %d: %w", r.Seq, err)
			}
			if !q.To.IsZero() && rec.Time.After(q.To) {
				return first, coveringCheckpoint(cps, inRange, head.Size), nil
			}
			if q.From.IsZero() || !rec.Time.Before(q.From) {
				inRange = r.Seq
				if first == 0 {
					first = r.Seq
				}
			}
		}
		if progress != nil && len(recs) > 0 {
			progress("selecting", recs[len(recs)-1].Seq, head.Size)
		}
		if len(recs) < exportPage || recs[len(recs)-1].Seq >= head.Size {
			break
		}
		after = recs[len(recs)-1].Seq
	}
	if first == 0 {
		return 0, 0, nil
	}
	return first, coveringCheckpoint(cps, inRange, head.Size), nil
}

// coveringCheckpoint returns the size of the first checkpoint at or after seq, or size
// (the head) when none is.
func coveringCheckpoint(cps []store.EvidenceCheckpoint, seq, size uint64) uint64 {
	for _, cp := range cps {
		if cp.Size >= seq {
			return cp.Size
		}
	}
	return size
}
