package evidence

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxSmallFile bounds each file but records.jsonl that VerifyReader holds in memory.
const maxSmallFile = 256 << 20

// VerifyReader reads a gzip-compressed tar bundle from r and verifies it as Bundle.Verify
// does, with the same checks in the same order. It checks records.jsonl while reading it
// when the manifest comes before it (as in every bundle Ward writes), so that memory grows
// by 32 bytes a record, not by the records; the other files are small and held. progress,
// when not nil, is called as records are checked with the number done and the number the
// manifest announces.
func VerifyReader(r io.Reader, opts VerifyOptions, progress func(done, total uint64)) (
	Report, error) {
	if opts.Roots == nil && opts.KeyFingerprint == "" {
		return Report{}, errors.New("evidence: verify: no trust anchor (a CA or a key fingerprint)")
	}
	gz, err := gzip.NewReader(r)
	if err != nil {
		return Report{}, fmt.Errorf("evidence: read bundle: %w", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	b := &Bundle{Files: map[string][]byte{}}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Report{}, fmt.Errorf("evidence: read bundle: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg || strings.ContainsAny(hdr.Name, `/\`) ||
			hdr.Size > maxBundleFile {
			return Report{}, fmt.Errorf("evidence: read bundle: unexpected entry %q", hdr.Name)
		}
		_, dup := b.Files[hdr.Name]
		if dup || hdr.Name == FileRecords && b.records != nil {
			return Report{}, fmt.Errorf("evidence: read bundle: duplicate file %q", hdr.Name)
		}
		b.Order = append(b.Order, hdr.Name)
		if m, ok := b.streamable(hdr.Name); ok {
			b.records = newRecordChecker(m, progress)
			if err := b.records.feed(tr); err != nil {
				return Report{}, fmt.Errorf("evidence: read bundle %s: %w", hdr.Name, err)
			}
			continue
		}
		if hdr.Size > maxSmallFile && hdr.Name != FileRecords {
			return Report{}, fmt.Errorf("evidence: read bundle: %s is %d bytes, more than "+
				"%d", hdr.Name, hdr.Size, maxSmallFile)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return Report{}, fmt.Errorf("evidence: read bundle %s: %w", hdr.Name, err)
		}
		b.Files[hdr.Name] = data
	}
	return b.Verify(opts)
}

// streamable reports whether the file name is records.jsonl and the manifest read before
// it is usable, and returns the manifest. Otherwise the records are read into memory and
// Verify names whatever is wrong.
func (b *Bundle) streamable(name string) (Manifest, bool) {
	var m Manifest
	if name != FileRecords {
		return m, false
	}
	data, ok := b.Files[FileManifest]
	if !ok || json.Unmarshal(data, &m) != nil || m.Format != BundleFormat {
		return m, false
	}
	return m, true
}
