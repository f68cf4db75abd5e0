package evidence

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// VerifyOptions say what to trust. Exactly one of Roots and KeyFingerprint is required.
type VerifyOptions struct {
	// Roots anchor the evidence key: evidence-chain.pem must chain to one of them, and its
	// first certificate must hold the key in evidence-pub.pem. Witness certificates must
	// chain to them too.
	Roots *x509.CertPool
	// KeyFingerprint is the SHA-256 of the evidence public key's DER SubjectPublicKeyInfo,
	// in hex (colons and a "SHA256:" prefix allowed). Witness certificates are then checked
	// for their signatures only, not anchored.
	KeyFingerprint string
}

// Report is what a successful verification checked.
type Report struct {
	Tenant         string
	FirstSeq       uint64 // 0 when the bundle has no records
	LastSeq        uint64
	Records        int
	FirstTime      time.Time
	LastTime       time.Time
	Checkpoints    int
	LastCheckpoint uint64 // size of the largest checkpoint
	// Unsigned counts records past the last checkpoint: they chain to it but no signature
	// covers them yet.
	Unsigned        int
	Witnesses       map[string]int // witness agent id -> checkpoints it countersigned
	KeyFingerprint  string         // SHA-256 of the evidence key's SubjectPublicKeyInfo
	WitnessAnchored bool           // witness certificates were checked against Roots
	// Base is the chain hash the first record continues (its prev): 32 zero bytes for a
	// log's first record, the last head of the previous archive for a later bundle.
	Base Hash
	// Head is the chain hash of the last record.
	Head Hash
	// ManifestSHA256 is the SHA-256 of manifest.json, in hex: it names the bundle (an
	// archive's log.archived record holds it).
	ManifestSHA256 string
}

// Continues checks that the bundle of rep continues the bundle of prev: same tenant, its
// first record follows prev's last and chains to prev's last head.
func (rep Report) Continues(prev Report) error {
	switch {
	case rep.Tenant != prev.Tenant:
		return fmt.Errorf("evidence: tenant %q does not continue tenant %q", rep.Tenant,
			prev.Tenant)
	case prev.Records == 0 || rep.Records == 0:
		return errors.New("evidence: a bundle without records continues nothing")
	case rep.FirstSeq != prev.LastSeq+1:
		return fmt.Errorf("evidence: records start at %d, the previous bundle ends at %d",
			rep.FirstSeq, prev.LastSeq)
	case rep.Base != prev.Head:
		return fmt.Errorf("evidence: record %d does not chain to the previous bundle's "+
			"last head %s (history rewritten)", rep.FirstSeq, prev.Head)
	}
	return nil
}

// Failure is a verification failure, naming what failed first.
type Failure struct {
	What   string // "record 12", "checkpoint 100", "witness w1 on checkpoint 100", ...
	Reason string
}

func (f *Failure) Error() string { return f.What + ": " + f.Reason }

func fail(what, format string, args ...any) error {
	return &Failure{What: what, Reason: fmt.Sprintf(format, args...)}
}

// Fingerprint returns the hex SHA-256 of pub's DER SubjectPublicKeyInfo.
func Fingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("evidence: fingerprint: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// Verify checks the bundle in this order, and returns a *Failure naming the first problem:
// the records and their hash chain, the checkpoints' signatures and heads, the evidence
// key against the trust anchor, the witness signatures, and the manifest with its
// signature.
func (b *Bundle) Verify(opts VerifyOptions) (Report, error) {
	var rep Report
	if opts.Roots == nil && opts.KeyFingerprint == "" {
		return rep, errors.New("evidence: verify: no trust anchor (a CA or a key fingerprint)")
	}
	manifestBytes, ok := b.Files[FileManifest]
	if !ok {
		return rep, fail(FileManifest, "missing")
	}
	var m Manifest
	if err := json.Unmarshal(manifestBytes, &m); err != nil {
		return rep, fail(FileManifest, "unreadable: %v", err)
	}
	if m.Format != BundleFormat {
		return rep, fail(FileManifest, "format %q, want %q", m.Format, BundleFormat)
	}
	rep.Tenant = m.Tenant
	rep.Witnesses = map[string]int{}

	pub, err := b.publicKey()
	if err != nil {
		return rep, err
	}
	if rep.KeyFingerprint, err = Fingerprint(pub); err != nil {
		return rep, fail(FilePublicKey, "%v", err)
	}

	chain, err := b.verifyRecords(m, &rep)
	if err != nil {
		return rep, err
	}
	if err := b.verifyCheckpoints(m, pub, chain, &rep); err != nil {
		return rep, err
	}
	if err := b.verifyAnchor(m, pub, rep.KeyFingerprint, opts); err != nil {
		return rep, err
	}
	if err := b.verifyWitnesses(m, opts, &rep); err != nil {
		return rep, err
	}
	if err := b.verifyManifest(m, manifestBytes, pub); err != nil {
		return rep, err
	}
	sum := sha256.Sum256(manifestBytes)
	rep.ManifestSHA256 = hex.EncodeToString(sum[:])
	if len(chain.hashes) > 0 {
		rep.Base, rep.Head = chain.base, chain.hashes[len(chain.hashes)-1]
	}
	return rep, nil
}

func (b *Bundle) publicKey() (crypto.PublicKey, error) {
	blk, _ := pem.Decode(b.Files[FilePublicKey])
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fail(FilePublicKey, "missing or not a PEM public key")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fail(FilePublicKey, "%v", err)
	}
	return pub, nil
}

// chainHashes maps the sequence numbers around the bundle's records to chain hashes:
// base is the hash before the first record (its prev), hashes[i] that of FirstSeq+i.
type chainHashes struct {
	first  uint64
	base   Hash
	hashes []Hash
}

// at returns the chain hash after record seq, for seq in [first-1, first+len-1].
func (c chainHashes) at(seq uint64) (Hash, bool) {
	switch {
	case seq+1 == c.first:
		return c.base, true
	case seq >= c.first && seq-c.first < uint64(len(c.hashes)):
		return c.hashes[seq-c.first], true
	}
	return Hash{}, false
}

// parsedLine is one record line after the parallel step.
type parsedLine struct {
	rec     Record
	time    string
	leaf    Hash
	claimed Hash
	err     error
}

func (b *Bundle) verifyRecords(m Manifest, rep *Report) (chainHashes, error) {
	rc := b.records
	if rc == nil {
		data, ok := b.Files[FileRecords]
		if !ok {
			return chainHashes{}, fail(FileRecords, "missing")
		}
		rc = newRecordChecker(m, nil)
		if err := rc.feed(bytes.NewReader(data)); err != nil {
			return chainHashes{}, fail(FileRecords, "%v", err)
		}
	}
	return rc.finish(rep)
}

// recordChecker checks records.jsonl as it is read: it keeps the chain hash of each
// record (32 bytes a record) and the first failure, never the records.
type recordChecker struct {
	m        Manifest
	progress func(done, total uint64)
	ch       chainHashes
	running  Hash
	n        int   // lines seen
	failure  error // the first failure
	first    string
	last     string // time texts of the first and last record
	size     int64
	sum      [32]byte
}

func newRecordChecker(m Manifest, progress func(done, total uint64)) *recordChecker {
	return &recordChecker{m: m, progress: progress, ch: chainHashes{first: m.FirstSeq}}
}

// recordBlock is how much of records.jsonl a checker reads at a time.
const recordBlock = 4 << 20

// feed reads records.jsonl from r to its end.
func (c *recordChecker) feed(r io.Reader) error {
	h := sha256.New()
	buf := make([]byte, recordBlock)
	var carry []byte
	total := uint64(0)
	if c.m.LastSeq >= c.m.FirstSeq && c.m.FirstSeq > 0 {
		total = c.m.LastSeq - c.m.FirstSeq + 1
	}
	for {
		n, err := io.ReadFull(r, buf)
		h.Write(buf[:n])
		c.size += int64(n)
		data := append(carry, buf[:n]...)
		end := len(data)
		if err == nil {
			end = bytes.LastIndexByte(data, '\n') + 1
		}
		c.check(parseLines(splitLines(data[:end])))
		carry = append([]byte(nil), data[end:]...)
		if c.progress != nil {
			c.progress(uint64(c.n), total)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			h.Sum(c.sum[:0])
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// check chains the parsed lines after those seen so far, keeping the first failure.
func (c *recordChecker) check(parsed []parsedLine) {
	for _, p := range parsed {
		i := c.n
		c.n++
		if c.failure != nil {
			continue
		}
		want := c.m.FirstSeq + uint64(i)
		what := fmt.Sprintf("record %d", want)
		if p.err != nil {
			c.failure = fail(fmt.Sprintf("record at line %d", i+1), "%v", p.err)
			continue
		}
		r := p.rec
		switch {
		case r.Seq != want:
			c.failure = fail(what, "line %d holds seq %d (records removed, inserted or "+
				"reordered)", i+1, r.Seq)
			continue
		case r.Tenant != c.m.Tenant:
			c.failure = fail(what, "tenant %q, bundle is for %q", r.Tenant, c.m.Tenant)
			continue
		}
		if i == 0 {
			c.running = r.Prev
			c.ch.base = r.Prev
		}
		if r.Prev != c.running {
			c.failure = fail(what, "prev does not match the hash of record %d (a record "+
				"before it was changed, removed or inserted)", want-1)
			continue
		}
		c.running = ChainHash(c.running, p.leaf)
		if c.running != p.claimed {
			c.failure = fail(what, "hash does not match its contents (record changed)")
			continue
		}
		c.ch.hashes = append(c.ch.hashes, c.running)
		if i == 0 {
			c.first = p.time
		}
		c.last = p.time
	}
}

// finish returns the chain hashes and fills rep, or the first failure.
func (c *recordChecker) finish(rep *Report) (chainHashes, error) {
	if c.failure != nil {
		return c.ch, c.failure
	}
	if c.n == 0 {
		if c.m.FirstSeq != 0 || c.m.LastSeq != 0 {
			return c.ch, fail(FileRecords, "no records, manifest says %d to %d",
				c.m.FirstSeq, c.m.LastSeq)
		}
		return c.ch, nil
	}
	for i, ts := range []string{c.first, c.last} {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			seq := c.m.FirstSeq + uint64(i*(c.n-1))
			return c.ch, fail(fmt.Sprintf("record %d", seq), "time: %v", err)
		}
		if i == 0 {
			rep.FirstTime = t
		}
		rep.LastTime = t
	}
	rep.FirstSeq = c.m.FirstSeq
	rep.LastSeq = c.m.FirstSeq + uint64(c.n) - 1
	rep.Records = c.n
	if rep.LastSeq != c.m.LastSeq {
		return c.ch, fail(FileRecords, "records end at %d, manifest says %d", rep.LastSeq,
			c.m.LastSeq)
	}
	return c.ch, nil
}

// splitLines splits newline-terminated lines; a last line without newline counts too.
func splitLines(data []byte) [][]byte {
	var lines [][]byte
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			lines = append(lines, data)
			break
		}
		lines = append(lines, data[:i])
		data = data[i+1:]
	}
	return lines
}

// parseLines splits, hashes and decodes lines on every CPU.
func parseLines(lines [][]byte) []parsedLine {
	out := make([]parsedLine, len(lines))
	workers := runtime.GOMAXPROCS(0)
	chunk := (len(lines) + workers - 1) / workers
	if chunk < 1024 {
		chunk = 1024
	}
	var wg sync.WaitGroup
	for start := 0; start < len(lines); start += chunk {
		end := min(start+chunk, len(lines))
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := start; i < end; i++ {
				out[i], buf = parseLine(lines[i], buf)
			}
		}()
	}
	wg.Wait()
	return out
}

// parseLine splits, hashes and scans one line, using buf for the body; the result does
// not keep the record's data.
func parseLine(line, buf []byte) (parsedLine, []byte) {
	n := len(line)
	if n < hashSuffixLen+2 {
		return parsedLine{err: errors.New(`line does not end with a "hash" member`)}, buf
	}
	buf = append(append(buf[:0], line[:n-hashSuffixLen]...), '}')
	_, claimed, err := SplitLine(line)
	if err != nil {
		return parsedLine{err: err}, buf
	}
	rec, ts, err := scanBody(buf)
	if err != nil {
		return parsedLine{err: err}, buf
	}
	rec.Data = nil
	return parsedLine{rec: rec, time: ts, leaf: LeafHash(buf), claimed: claimed}, buf
}

// ParseCheckpointLine decodes a line of checkpoints.jsonl.
func ParseCheckpointLine(line []byte) (SignedCheckpoint, error) {
	var j checkpointJSON
	if err := json.Unmarshal(line, &j); err != nil {
		return SignedCheckpoint{}, err
	}
	head, err := ParseHash(j.Head)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	sig, err := base64.StdEncoding.DecodeString(j.Signature)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("signature: %w", err)
	}
	return SignedCheckpoint{Checkpoint: Checkpoint{Tenant: j.Tenant, Size: j.Size,
		Head: head, Time: t}, Signature: sig}, nil
}

func (b *Bundle) verifyCheckpoints(m Manifest, pub crypto.PublicKey, ch chainHashes,
	rep *Report) error {
	data, ok := b.Files[FileCheckpoints]
	if !ok {
		return fail(FileCheckpoints, "missing")
	}
	var last uint64
	for i, line := range splitLines(data) {
		cp, err := ParseCheckpointLine(line)
		if err != nil {
			return fail(fmt.Sprintf("checkpoint at line %d", i+1), "unreadable: %v", err)
		}
		what := fmt.Sprintf("checkpoint %d", cp.Size)
		if cp.Tenant != m.Tenant {
			return fail(what, "tenant %q, bundle is for %q", cp.Tenant, m.Tenant)
		}
		if len(cp.Signature) == 0 {
			return fail(what, "missing signature")
		}
		if err := VerifySignature(pub, cp.Text(), cp.Signature); err != nil {
			return fail(what, "signature does not verify with the evidence key (forged)")
		}
		if i > 0 && cp.Size <= last {
			return fail(what, "checkpoints out of order")
		}
		h, ok := ch.at(cp.Size)
		if !ok {
			return fail(what, "outside the records of the bundle (%d to %d): records "+
				"missing", m.FirstSeq, m.LastSeq)
		}
		if h != cp.Head {
			return fail(what, "head does not match the chain hash of record %d", cp.Size)
		}
		last = cp.Size
		rep.Checkpoints++
	}
	if rep.Records > 0 && rep.Checkpoints == 0 {
		return fail(FileCheckpoints, "no signed checkpoint covers the records")
	}
	rep.LastCheckpoint = last
	if rep.Records > 0 && last < rep.LastSeq {
		rep.Unsigned = int(rep.LastSeq - last)
	}
	return nil
}

// ParseWitnessLine decodes a line of witnesses.jsonl.
func ParseWitnessLine(line []byte) (Witness, error) {
	var j witnessJSON
	if err := json.Unmarshal(line, &j); err != nil {
		return Witness{}, err
	}
	head, err := ParseHash(j.Head)
	if err != nil {
		return Witness{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return Witness{}, err
	}
	sig, err := base64.StdEncoding.DecodeString(j.Signature)
	if err != nil {
		return Witness{}, fmt.Errorf("signature: %w", err)
	}
	w := Witness{Tenant: j.Tenant, Size: j.Size, Head: head, WitnessID: j.Witness, Time: t,
		Signature: sig}
	for _, c := range j.Chain {
		der, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			return Witness{}, fmt.Errorf("chain: %w", err)
		}
		w.CertDER = append(w.CertDER, der)
	}
	return w, nil
}

func (b *Bundle) verifyWitnesses(m Manifest, opts VerifyOptions, rep *Report) error {
	cps := map[uint64]SignedCheckpoint{}
	for _, line := range splitLines(b.Files[FileCheckpoints]) {
		cp, _ := ParseCheckpointLine(line) // verified above
		cps[cp.Size] = cp
	}
	data, ok := b.Files[FileWitnesses]
	if !ok {
		return fail(FileWitnesses, "missing")
	}
	rep.WitnessAnchored = opts.Roots != nil
	for i, line := range splitLines(data) {
		w, err := ParseWitnessLine(line)
		if err != nil {
			return fail(fmt.Sprintf("witness at line %d", i+1), "unreadable: %v", err)
		}
		what := fmt.Sprintf("witness %s on checkpoint %d", w.WitnessID, w.Size)
		cp, ok := cps[w.Size]
		if !ok || cp.Head != w.Head || w.Tenant != m.Tenant {
			return fail(what, "no such checkpoint in the bundle")
		}
		if err := VerifyWitness(w, cp.Checkpoint, opts.Roots); err != nil {
			return fail(what, "%v", err)
		}
		rep.Witnesses[w.WitnessID]++
	}
	return nil
}

// VerifyWitness checks w's signature over cp's text with the key of w's leaf certificate,
// that the certificate names agent w.WitnessID of cp's tenant, and, when roots is not nil,
// that the certificate chains to roots at w.Time.
func VerifyWitness(w Witness, cp Checkpoint, roots *x509.CertPool) error {
	if len(w.Signature) == 0 {
		return errors.New("missing signature")
	}
	if len(w.CertDER) == 0 {
		return errors.New("no certificate")
	}
	certs := make([]*x509.Certificate, len(w.CertDER))
	for i, der := range w.CertDER {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("certificate: %w", err)
		}
		certs[i] = c
	}
	leaf := certs[0]
	wantID := "/tenant/" + cp.Tenant + "/agent/" + w.WitnessID
	named := false
	for _, u := range leaf.URIs {
		if u.Scheme == "spiffe" && u.Path == wantID {
			named = true
		}
	}
	if !named {
		return fmt.Errorf("certificate does not name agent %s of tenant %s", w.WitnessID,
			cp.Tenant)
	}
	if err := VerifySignature(leaf.PublicKey, cp.Text(), w.Signature); err != nil {
		return errors.New("signature does not verify with the witness key (forged)")
	}
	if roots == nil {
		return nil
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		CurrentTime: w.Time, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("certificate does not chain to the trust anchor: %v", err)
	}
	return nil
}

func (b *Bundle) verifyAnchor(m Manifest, pub crypto.PublicKey, fp string,
	opts VerifyOptions) error {
	if opts.KeyFingerprint != "" {
		want := strings.ToLower(strings.ReplaceAll(
			strings.TrimPrefix(strings.TrimPrefix(opts.KeyFingerprint, "SHA256:"), "sha256:"),
			":", ""))
		if want != fp {
			return fail(FilePublicKey, "fingerprint %s is not the trusted %s", fp, want)
		}
	}
	if opts.Roots == nil {
		return nil
	}
	var certs []*x509.Certificate
	rest := b.Files[FileChain]
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return fail(FileChain, "%v", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return fail(FileChain, "no certificate")
	}
	leafFP, err := Fingerprint(certs[0].PublicKey)
	if err != nil || leafFP != fp {
		return fail(FileChain, "first certificate is not for the key in %s", FilePublicKey)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err = certs[0].Verify(x509.VerifyOptions{Roots: opts.Roots, Intermediates: inter,
		CurrentTime: m.Created, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fail(FilePublicKey, "key does not chain to the trust anchor: %v", err)
	}
	return nil
}

func (b *Bundle) verifyManifest(m Manifest, manifestBytes []byte, pub crypto.PublicKey) error {
	sig, ok := b.Files[FileManifestSig]
	if !ok || len(sig) == 0 {
		return fail(FileManifestSig, "missing signature")
	}
	if err := VerifySignature(pub, manifestBytes, sig); err != nil {
		return fail(FileManifestSig, "does not verify manifest.json with the evidence key")
	}
	listed := map[string]bool{FileManifest: true, FileManifestSig: true}
	for _, f := range m.Files {
		listed[f.Name] = true
		size, sum, ok := b.fileSum(f.Name)
		if !ok {
			return fail(FileManifest, "lists %s, which is missing", f.Name)
		}
		if size != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
			return fail(FileManifest, "%s does not match its size and SHA-256", f.Name)
		}
	}
	var extra []string
	if b.records != nil && !listed[FileRecords] {
		extra = append(extra, FileRecords)
	}
	for name := range b.Files {
		if !listed[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fail(FileManifest, "does not list %s", strings.Join(extra, ", "))
	}
	return nil
}

// fileSum returns the size and SHA-256 of a file of the bundle, streamed or held.
func (b *Bundle) fileSum(name string) (int64, [32]byte, bool) {
	if name == FileRecords && b.records != nil {
		return b.records.size, b.records.sum, true
	}
	data, ok := b.Files[name]
	if !ok {
		return 0, [32]byte{}, false
	}
	return int64(len(data)), sha256.Sum256(data), true
}
