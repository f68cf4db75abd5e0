package evidence

import (
	"bytes"
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

// Export writes the bundle of q to w: the records of the range, extended forward to the
// first checkpoint at or after its last record (so each one is covered by a signature;
// records after the newest checkpoint chain to it), the checkpoints within, their witness
// signatures, the evidence key and its chain. progress, when not nil, is called as records
// are read with the number read and the log's size.
//
// Known limitation: the bundle is built in memory.
func (x *Exporter) Export(ctx context.Context, w io.Writer, q ExportQuery,
	progress func(done, total uint64)) (ExportSummary, error) {
	var sum ExportSummary
	if x.Checkpointer != nil {
		if _, err := x.Checkpointer.Checkpoint(ctx, q.Tenant); err != nil {
			return sum, fmt.Errorf("export: %w", err)
		}
	}
	head, err := x.Store.EvidenceHead(ctx, q.Tenant)
	if err != nil {
		return sum, fmt.Errorf("export: %w", err)
	}
	cps, err := x.Store.ListCheckpoints(ctx, q.Tenant, 0)
	if err != nil {
		return sum, fmt.Errorf("export: %w", err)
	}

	lines, first, last, err := x.selectRecords(ctx, q, head, cps, progress)
	if err != nil {
		return sum, err
	}
	c := evidence.BundleContents{Tenant: q.Tenant, Created: x.now(), Records: lines,
		FirstSeq: first, LastSeq: last, PublicKey: x.Key.PublicPEM, Chain: x.Key.ChainPEM}
	if first > 0 {
		for _, cp := range cps {
			if cp.Size+1 >= first && cp.Size <= last {
				c.Checkpoints = append(c.Checkpoints, evidence.SignedCheckpoint{
					Checkpoint: evidence.Checkpoint{Tenant: cp.Tenant, Size: cp.Size,
						Head: cp.Head, Time: cp.Time}, Signature: cp.Signature})
			}
		}
		ws, err := x.Store.ListWitnesses(ctx, q.Tenant, first-min(first, 2))
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

func (x *Exporter) now() time.Time {
	if x.Clock != nil {
		return x.Clock()
	}
	return time.Now()
}

// selectRecords reads the log and returns the bundle lines of the records from the first
// one in range to the end (see Export).
func (x *Exporter) selectRecords(ctx context.Context, q ExportQuery, head store.EvidenceHead,
	cps []store.EvidenceCheckpoint, progress func(done, total uint64)) (
	lines []byte, first, last uint64, err error) {
	var buf bytes.Buffer
	var end uint64 // last seq to include; 0 until the range's last record is known
	inRange := uint64(0)
	for after := uint64(0); ; {
		recs, err := x.Store.ListEvidence(ctx, q.Tenant, after, exportPage)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("export: %w", err)
		}
		for _, r := range recs {
			rec, err := evidence.ParseBody(r.Body)
			if err != nil {
				return nil, 0, 0, fmt.Errorf("export: record %d: %w", r.Seq, err)
			}
			afterFrom := q.From.IsZero() || !rec.Time.Before(q.From)
			beforeTo := q.To.IsZero() || !rec.Time.After(q.To)
			if afterFrom && beforeTo {
				inRange = r.Seq
			}
			if first == 0 && afterFrom && beforeTo {
				first = r.Seq
			}
			if first != 0 && (end == 0 || r.Seq <= end) {
				buf.Write(evidence.Line(r.Body, r.Hash))
				buf.WriteByte('\n')
				last = r.Seq
			}
			if first != 0 && !beforeTo && end == 0 {
				end = coveringCheckpoint(cps, inRange, head.Size)
			}
		}
		if progress != nil {
			progress(after+uint64(len(recs)), head.Size)
		}
		if len(recs) < exportPage || (end != 0 && last >= end) {
			break
		}
		after = recs[len(recs)-1].Seq
	}
	if first == 0 {
		return nil, 0, 0, nil
	}
	if end == 0 {
		end = coveringCheckpoint(cps, inRange, head.Size)
	}
	// drop what lies past end (the page may have read further)
	lines = buf.Bytes()
	for last > end {
		i := bytes.LastIndexByte(lines[:len(lines)-1], '\n')
		lines = lines[:i+1]
		last--
	}
	return lines, first, last, nil
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
