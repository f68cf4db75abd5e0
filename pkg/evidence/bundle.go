package evidence

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Names of the files in a bundle.
const (
	FileReadme      = "README.txt"
	FileManifest    = "manifest.json"
	FileManifestSig = "manifest.sig"
	FilePublicKey   = "evidence-pub.pem"   // the controller's evidence public key, PEM
	FileChain       = "evidence-chain.pem" // its certificate, then the issuing CA certificates
	FileCheckpoints = "checkpoints.jsonl"
	FileWitnesses   = "witnesses.jsonl"
	FileRecords     = "records.jsonl"
)

// BundleFormat names the bundle layout in the manifest.
const BundleFormat = "ward-evidence-bundle/1"

// Manifest lists a bundle's files. It is signed (manifest.sig) by the evidence key.
type Manifest struct {
	Format   string         `json:"format"`
	Tenant   string         `json:"tenant"`
	Created  time.Time      `json:"created"`
	FirstSeq uint64         `json:"first_seq"` // 0 when there are no records
	LastSeq  uint64         `json:"last_seq"`
	Files    []ManifestFile `json:"files"` // every file but manifest.json and manifest.sig
}

// ManifestFile is one file's entry in the manifest.
type ManifestFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // lowercase hex
}

// checkpointJSON is one line of checkpoints.jsonl.
type checkpointJSON struct {
	Tenant    string `json:"tenant"`
	Size      uint64 `json:"size"`
	Head      string `json:"head"`
	Time      string `json:"time"`
	Signature string `json:"signature"` // base64 (standard, padded) of the DER signature
}

// witnessJSON is one line of witnesses.jsonl.
type witnessJSON struct {
	Tenant    string   `json:"tenant"`
	Size      uint64   `json:"size"`
	Head      string   `json:"head"`
	Witness   string   `json:"witness"`
	Time      string   `json:"time"`
	Signature string   `json:"signature"`
	Chain     []string `json:"chain"` // base64 DER certificates, leaf first
}

// CheckpointLine encodes a signed checkpoint as a line of checkpoints.jsonl (no newline).
func CheckpointLine(c SignedCheckpoint) []byte {
	b, _ := json.Marshal(checkpointJSON{
		Tenant: c.Tenant, Size: c.Size, Head: c.Head.String(),
		Time:      c.Time.UTC().Format(time.RFC3339Nano),
		Signature: base64.StdEncoding.EncodeToString(c.Signature),
	})
	return b
}

// WitnessLine encodes a witness signature as a line of witnesses.jsonl (no newline).
func WitnessLine(w Witness) []byte {
	chain := make([]string, len(w.CertDER))
	for i, der := range w.CertDER {
		chain[i] = base64.StdEncoding.EncodeToString(der)
	}
	b, _ := json.Marshal(witnessJSON{
		Tenant: w.Tenant, Size: w.Size, Head: w.Head.String(), Witness: w.WitnessID,
		Time:      w.Time.UTC().Format(time.RFC3339Nano),
		Signature: base64.StdEncoding.EncodeToString(w.Signature), Chain: chain,
	})
	return b
}

// RecordLines yields the lines of records.jsonl in order, each without its newline (see
// Line). WriteBundle calls it twice, once to hash and once to write the file, and both
// calls must yield the same lines; the line passed to yield may be reused afterwards.
type RecordLines func(yield func(line []byte) error) error

// BundleContents is what WriteBundle packs.
type BundleContents struct {
	Tenant  string
	Created time.Time
	Records []byte // records.jsonl: Line of each record, each followed by "\n"
	// Lines, when not nil, yields the records instead of Records, so that a bundle of any
	// size is written without holding its records in memory.
	Lines       RecordLines
	FirstSeq    uint64
	LastSeq     uint64
	Checkpoints []SignedCheckpoint
	Witnesses   []Witness
	PublicKey   []byte // PEM
	Chain       []byte // PEM certificates, the evidence key's first
}

// bundleFile is one file of a bundle being written: its bytes, or its lines.
type bundleFile struct {
	name  string
	data  []byte
	lines RecordLines
	size  int64
	sum   [32]byte
}

// ErrRecordsChanged means the records yielded while a bundle was written were not those
// hashed for its manifest.
var ErrRecordsChanged = errors.New("evidence: records changed while the bundle was written")

// WriteBundle writes a gzip-compressed tar bundle to w and signs its manifest with key,
// the evidence key whose public half is c.PublicKey. With c.Lines the records are read
// twice (hashed for the manifest, then written) and never held in memory; the other files
// are small.
func WriteBundle(w io.Writer, c BundleContents, key crypto.Signer) error {
	var cps, wits bytes.Buffer
	for _, cp := range c.Checkpoints {
		cps.Write(CheckpointLine(cp))
		cps.WriteByte('\n')
	}
	for _, wt := range c.Witnesses {
		wits.Write(WitnessLine(wt))
		wits.WriteByte('\n')
	}
	records := &bundleFile{name: FileRecords, data: c.Records, lines: c.Lines}
	files := []*bundleFile{
		{name: FileReadme, data: []byte(readme(c))},
		{name: FilePublicKey, data: c.PublicKey},
		{name: FileChain, data: c.Chain},
		{name: FileCheckpoints, data: cps.Bytes()},
		{name: FileWitnesses, data: wits.Bytes()},
		records,
	}
	for _, f := range files {
		if f.lines == nil {
			f.size, f.sum = int64(len(f.data)), sha256.Sum256(f.data)
			continue
		}
		h := sha256.New()
		err := f.lines(func(line []byte) error {
			h.Write(line)
			h.Write([]byte{'\n'})
			f.size += int64(len(line)) + 1
			return nil
		})
		if err != nil {
			return fmt.Errorf("evidence: bundle records: %w", err)
		}
		h.Sum(f.sum[:0])
	}

	m := Manifest{Format: BundleFormat, Tenant: c.Tenant, Created: c.Created.UTC(),
		FirstSeq: c.FirstSeq, LastSeq: c.LastSeq}
	for _, f := range files {
		m.Files = append(m.Files, ManifestFile{Name: f.name, Size: f.size,
			SHA256: hex.EncodeToString(f.sum[:])})
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("evidence: bundle manifest: %w", err)
	}
	manifest = append(manifest, '\n')
	sig, err := Sign(key, manifest)
	if err != nil {
		return err
	}

	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	add := func(f *bundleFile) error {
		hdr := &tar.Header{Name: f.name, Mode: 0o644, Size: f.size,
			ModTime: c.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if f.lines == nil {
			_, err := tw.Write(f.data)
			return err
		}
		return writeLines(tw, f)
	}
	order := append([]*bundleFile{files[0],
		{name: FileManifest, data: manifest, size: int64(len(manifest))},
		{name: FileManifestSig, data: sig, size: int64(len(sig))}}, files[1:]...)
	for _, f := range order {
		if err := add(f); err != nil {
			return fmt.Errorf("evidence: write bundle %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("evidence: write bundle: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("evidence: write bundle: %w", err)
	}
	return nil
}

// writeLines writes f's lines to w, buffered, and checks them against f's size and hash.
func writeLines(w io.Writer, f *bundleFile) error {
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 256<<10)
	var n int64
	err := f.lines(func(line []byte) error {
		n += int64(len(line)) + 1
		if n > f.size {
			return ErrRecordsChanged
		}
		bw.Write(line)
		return bw.WriteByte('\n')
	})
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	var sum [32]byte
	if n != f.size || !bytes.Equal(h.Sum(sum[:0]), f.sum[:]) {
		return ErrRecordsChanged
	}
	return nil
}

// Bundle is a bundle read into memory: its files by name.
type Bundle struct {
	Files map[string][]byte
	Order []string // file names in archive order
	// records, when not nil, is records.jsonl checked while it was read (VerifyReader);
	// Files does not hold it then.
	records *recordChecker
}

// maxBundleFile bounds one file read from a bundle (4 GiB).
const maxBundleFile = 4 << 30

// ReadBundle reads a gzip-compressed tar bundle. It rejects anything but regular files
// with plain names, and duplicate names.
func ReadBundle(r io.Reader) (*Bundle, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("evidence: read bundle: %w", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	b := &Bundle{Files: map[string][]byte{}}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return nil, fmt.Errorf("evidence: read bundle: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg || strings.ContainsAny(hdr.Name, `/\`) ||
			hdr.Size > maxBundleFile {
			return nil, fmt.Errorf("evidence: read bundle: unexpected entry %q", hdr.Name)
		}
		if _, dup := b.Files[hdr.Name]; dup {
			return nil, fmt.Errorf("evidence: read bundle: duplicate file %q", hdr.Name)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("evidence: read bundle %s: %w", hdr.Name, err)
		}
		b.Files[hdr.Name] = data
		b.Order = append(b.Order, hdr.Name)
	}
}

// WriteTo writes b back as a gzip-compressed tar, files in b.Order (then any others, by
// name). Tests use it to produce tampered bundles.
func (b *Bundle) WriteTo(w io.Writer) (int64, error) {
	names := append([]string(nil), b.Order...)
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	var extra []string
	for n := range b.Files {
		if !seen[n] {
			extra = append(extra, n)
		}
	}
	sort.Strings(extra)
	names = append(names, extra...)

	cw := &countWriter{w: w}
	gz := gzip.NewWriter(cw)
	tw := tar.NewWriter(gz)
	for _, n := range names {
		data, ok := b.Files[n]
		if !ok {
			continue
		}
		hdr := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return cw.n, err
		}
		if _, err := tw.Write(data); err != nil {
			return cw.n, err
		}
	}
	if err := tw.Close(); err != nil {
		return cw.n, err
	}
	err := gz.Close()
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func readme(c BundleContents) string {
	return fmt.Sprintf(`Ward evidence bundle
====================

Tenant (clinic): %s
Records:         %d to %d
Created:         %s

This archive is a tamper-evident extract of the clinic's evidence log kept by Ward. It
holds:

  records.jsonl       the log records, one JSON object per line, in order
  checkpoints.jsonl   checkpoints of the log, each signed by the controller's evidence key
  witnesses.jsonl     countersignatures of checkpoints by the clinic's own collector agent
  evidence-pub.pem    the controller's evidence public key
  evidence-chain.pem  that key's certificate and the certificates of the CA that issued it
  manifest.json       every file above with its size and SHA-256
  manifest.sig        the evidence key's signature of manifest.json (ECDSA P-256, DER)

1. Check the manifest signature with stock OpenSSL, without any Ward software:

     openssl dgst -sha256 -verify evidence-pub.pem -signature manifest.sig manifest.json

   It prints "Verified OK". Then check each file's SHA-256 against manifest.json:

     sha256sum records.jsonl checkpoints.jsonl witnesses.jsonl evidence-pub.pem

2. Make sure evidence-pub.pem is really the MSP controller's key: compare its fingerprint

     openssl pkey -pubin -in evidence-pub.pem -outform DER | sha256sum

   with the one the clinic was given, or check evidence-chain.pem against the Ward CA
   certificate you obtained independently.

3. Verify every record, the hash chain, the checkpoints and the witness signatures:

     wardctl evidence verify BUNDLE.tar.gz --ca ca.pem
     wardctl evidence verify BUNDLE.tar.gz --key-fingerprint SHA256HEX

   Each record's "hash" is SHA-256(previous hash || SHA-256(record without "hash")); the
   format is documented in Ward's docs/evidence.md so that it can be checked with other
   tools. A changed, removed, inserted or reordered record breaks the chain, and the
   checkpoint signatures make it impossible to rebuild the chain unnoticed. The clinic's
   collector keeps its own copy of every checkpoint it countersigned ("ward-agent evidence
   checkpoints"), so a history rewritten on the MSP side contradicts the clinic's copy.
`, c.Tenant, c.FirstSeq, c.LastSeq, c.Created.UTC().Format(time.RFC3339))
}
