package evidence

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// linesOf yields the lines of a records.jsonl file, as an exporter reading pages would.
func linesOf(records []byte) RecordLines {
	return func(yield func([]byte) error) error {
		for _, l := range splitLines(records) {
			if err := yield(l); err != nil {
				return err
			}
		}
		return nil
	}
}

// TestStreamedBundle writes the records through Lines and checks that the bundle is the
// one written from memory (same files), and that VerifyReader checks it with progress.
func TestStreamedBundle(t *testing.T) {
	p := newPKI(t, "clinic")
	c := buildLog(t, p, "clinic", 3000, 1000, true)
	var held bytes.Buffer
	if err := WriteBundle(&held, c, p.key); err != nil {
		t.Fatal(err)
	}
	sc := c
	sc.Records, sc.Lines = nil, linesOf(c.Records)
	var streamed bytes.Buffer
	if err := WriteBundle(&streamed, sc, p.key); err != nil {
		t.Fatal(err)
	}
	a, err := ReadBundle(&held)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ReadBundle(bytes.NewReader(streamed.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range a.Order {
		if name != FileManifestSig && !bytes.Equal(a.Files[name], b.Files[name]) {
			t.Errorf("%s differs between the held and the streamed bundle", name)
		}
	}

	var calls int
	var last, total uint64
	rep, err := VerifyReader(bytes.NewReader(streamed.Bytes()), VerifyOptions{Roots: p.roots},
		func(done, tot uint64) { calls, last, total = calls+1, done, tot })
	if err != nil {
		t.Fatalf("VerifyReader: %v", err)
	}
	if rep.Records != 3000 || rep.Checkpoints != 3 || last != 3000 || total != 3000 ||
		calls == 0 {
		t.Errorf("report %+v, progress %d calls, last %d of %d", rep, calls, last, total)
	}
}

// TestStreamedBundleRecordsChanged checks that records yielding other lines the second
// time fail the write instead of producing a bundle whose manifest does not match.
func TestStreamedBundleRecordsChanged(t *testing.T) {
	p := newPKI(t, "clinic")
	c := buildLog(t, p, "clinic", 20, 10, true)
	first := true
	other := buildLog(t, p, "clinic", 20, 5, true).Records
	other = bytes.Replace(other, []byte(`"n":3`), []byte(`"n":4`), 1)
	c.Lines = func(yield func([]byte) error) error {
		recs := c.Records
		if !first {
			recs = other
		}
		first = false
		return linesOf(recs)(yield)
	}
	err := WriteBundle(&bytes.Buffer{}, c, p.key)
	if !errors.Is(err, ErrRecordsChanged) {
		t.Errorf("WriteBundle = %v, want ErrRecordsChanged", err)
	}
}

// split returns the bundle contents of records first to last of c, with the checkpoints
// and witnesses at first-1 to last.
func split(c BundleContents, first, last uint64) BundleContents {
	lines := splitLines(c.Records)
	var recs []byte
	for _, l := range lines[first-1 : last] {
		recs = append(append(recs, l...), '\n')
	}
	out := c
	out.Records, out.FirstSeq, out.LastSeq = recs, first, last
	out.Checkpoints, out.Witnesses = nil, nil
	for _, cp := range c.Checkpoints {
		if cp.Size+1 >= first && cp.Size <= last {
			out.Checkpoints = append(out.Checkpoints, cp)
		}
	}
	for _, w := range c.Witnesses {
		if w.Size+1 >= first && w.Size <= last {
			out.Witnesses = append(out.Witnesses, w)
		}
	}
	return out
}

// TestContinues checks that a later bundle continues an archive: records follow and
// chain to its last head; a gap, another log or a rewritten archive do not.
func TestContinues(t *testing.T) {
	p := newPKI(t, "clinic")
	c := buildLog(t, p, "clinic", 30, 10, true)
	verify := func(c BundleContents) Report {
		t.Helper()
		rep, err := writeRead(t, c, p).Verify(VerifyOptions{Roots: p.roots})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	archive, live := verify(split(c, 1, 20)), verify(split(c, 21, 30))
	if err := live.Continues(archive); err != nil {
		t.Errorf("live after archive: %v", err)
	}
	if archive.Base != (Hash{}) || live.Base != archive.Head {
		t.Errorf("bases %s %s, archive head %s", archive.Base, live.Base, archive.Head)
	}
	if err := archive.Continues(live); err == nil {
		t.Error("archive after live: no error")
	}
	if err := live.Continues(verify(split(c, 1, 10))); err == nil {
		t.Error("gap 11..20: no error")
	}
	// the same numbers from another log (another history) do not chain
	other := buildLog(t, p, "clinic", 30, 10, true)
	other.Records = bytes.ReplaceAll(other.Records, []byte(`"subject":"s"`),
		[]byte(`"subject":"t"`))
	other = rebuild(t, p, other)
	if err := live.Continues(verify(split(other, 1, 20))); err == nil ||
		!strings.Contains(err.Error(), "history rewritten") {
		t.Errorf("rewritten archive: %v", err)
	}
}

// rebuild rehashes c's records and re-signs its checkpoints (a rewritten history signed
// with the real key).
func rebuild(t *testing.T, p *testPKI, c BundleContents) BundleContents {
	var prev Hash
	var recs []byte
	heads := map[uint64]Hash{}
	for _, l := range splitLines(c.Records) {
		body, _, err := SplitLine(l)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseBody(body)
		if err != nil {
			t.Fatal(err)
		}
		r.Prev = prev
		body = r.Body()
		prev = ChainHash(prev, LeafHash(body))
		heads[r.Seq] = prev
		recs = append(append(recs, Line(body, prev)...), '\n')
	}
	c.Records = recs
	for i := range c.Checkpoints {
		cp := &c.Checkpoints[i]
		cp.Head = heads[cp.Size]
		cp.Signature, _ = Sign(p.key, cp.Text())
	}
	c.Witnesses = nil
	return c
}
