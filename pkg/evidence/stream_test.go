package evidence

import (
	"bytes"
	"errors"
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
