package evidence

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)

// testPKI is a root CA, the evidence key with its certificate, and a witness agent.
type testPKI struct {
	roots       *x509.CertPool
	rootDER     []byte
	key         *ecdsa.PrivateKey
	chainPEM    []byte
	pubPEM      []byte
	witnessKey  *ecdsa.PrivateKey
	witnessCert []byte
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func issue(t testing.TB, tmpl, parent *x509.Certificate, pub, signer any) []byte {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func newPKI(t testing.TB, tenant string) *testPKI {
	rootKey := newKey(t)
	root := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root"},
		NotBefore: epoch.Add(-time.Hour), NotAfter: epoch.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	rootDER := issue(t, root, root, &rootKey.PublicKey, rootKey)
	root, _ = x509.ParseCertificate(rootDER)
	p := &testPKI{roots: x509.NewCertPool(), rootDER: rootDER, key: newKey(t),
		witnessKey: newKey(t)}
	p.roots.AddCert(root)

	ctl, _ := url.Parse("spiffe://test/controller/evidence")
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), URIs: []*url.URL{ctl},
		NotBefore: epoch.Add(-time.Hour), NotAfter: epoch.Add(5 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER := issue(t, leaf, root, &p.key.PublicKey, rootKey)
	p.chainPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})
	pubDER, _ := x509.MarshalPKIXPublicKey(&p.key.PublicKey)
	p.pubPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	ag, _ := url.Parse("spiffe://test/tenant/" + tenant + "/agent/col1")
	wc := &x509.Certificate{SerialNumber: big.NewInt(3), URIs: []*url.URL{ag},
		NotBefore: epoch.Add(-time.Hour), NotAfter: epoch.Add(30 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}
	p.witnessCert = issue(t, wc, root, &p.witnessKey.PublicKey, rootKey)
	return p
}

// buildLog makes n records and checkpoints every `every` records (and at the end when
// final), with a witness on each checkpoint.
func buildLog(t testing.TB, p *testPKI, tenant string, n, every int, final bool) BundleContents {
	c := BundleContents{Tenant: tenant, Created: epoch.Add(time.Hour), PublicKey: p.pubPEM,
		Chain: p.chainPEM}
	var prev Hash
	var records bytes.Buffer
	checkpoint := func(size uint64, head Hash, at time.Time) {
		cp := Checkpoint{Tenant: tenant, Size: size, Head: head, Time: at}
		sig, err := Sign(p.key, cp.Text())
		if err != nil {
			t.Fatal(err)
		}
		c.Checkpoints = append(c.Checkpoints, SignedCheckpoint{Checkpoint: cp, Signature: sig})
		wsig, err := Sign(p.witnessKey, cp.Text())
		if err != nil {
			t.Fatal(err)
		}
		c.Witnesses = append(c.Witnesses, Witness{Tenant: tenant, Size: size, Head: head,
			WitnessID: "col1", Time: at, Signature: wsig, CertDER: [][]byte{p.witnessCert}})
	}
	for i := 1; i <= n; i++ {
		data, err := Canonical(map[string]any{"n": i, "note": "Patient: John Smith"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := Record{Seq: uint64(i), Time: epoch.Add(time.Duration(i) * time.Second),
			Tenant: tenant, Type: "test.record", Actor: Actor{Kind: "operator", ID: "admin"},
			Subject: "s", Data: data, Prev: prev}
		body := r.Body()
		prev = ChainHash(prev, LeafHash(body))
		records.Write(Line(body, prev))
		records.WriteByte('\n')
		if every > 0 && i%every == 0 || final && i == n && (every == 0 || i%every != 0) {
			checkpoint(uint64(i), prev, r.Time)
		}
	}
	c.Records = records.Bytes()
	if n > 0 {
		c.FirstSeq, c.LastSeq = 1, uint64(n)
	}
	return c
}

func writeRead(t testing.TB, c BundleContents, p *testPKI) *Bundle {
	var buf bytes.Buffer
	if err := WriteBundle(&buf, c, p.key); err != nil {
		t.Fatal(err)
	}
	b, err := ReadBundle(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyGoodBundle(t *testing.T) {
	p := newPKI(t, "clinic")
	b := writeRead(t, buildLog(t, p, "clinic", 25, 10, true), p)
	for _, opts := range []VerifyOptions{{Roots: p.roots}} {
		rep, err := b.Verify(opts)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if rep.Records != 25 || rep.FirstSeq != 1 || rep.LastSeq != 25 || rep.Checkpoints != 3 ||
			rep.Witnesses["col1"] != 3 || rep.Unsigned != 0 || rep.Tenant != "clinic" {
			t.Errorf("report = %+v", rep)
		}
		fp := rep.KeyFingerprint
		if _, err := b.Verify(VerifyOptions{KeyFingerprint: "SHA256:" + fp}); err != nil {
			t.Errorf("Verify with fingerprint: %v", err)
		}
	}
}

func TestVerifyUnsignedTail(t *testing.T) {
	p := newPKI(t, "clinic")
	b := writeRead(t, buildLog(t, p, "clinic", 25, 10, false), p)
	rep, err := b.Verify(VerifyOptions{Roots: p.roots})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Unsigned != 5 || rep.LastCheckpoint != 20 {
		t.Errorf("Unsigned = %d, LastCheckpoint = %d; want 5, 20", rep.Unsigned, rep.LastCheckpoint)
	}
}

// editLines applies fn to the record lines of b.
func editLines(b *Bundle, fn func(lines [][]byte) [][]byte) {
	lines := splitLines(b.Files[FileRecords])
	lines = fn(lines)
	b.Files[FileRecords] = append(bytes.Join(lines, []byte("\n")), '\n')
}

func TestVerifyDetectsTampering(t *testing.T) {
	p := newPKI(t, "clinic")
	other := newPKI(t, "clinic")
	good := buildLog(t, p, "clinic", 30, 10, true)

	tests := []struct {
		name  string
		opts  func(rep Report) VerifyOptions
		edit  func(t *testing.T, b *Bundle)
		wants string // the failure must start with this
	}{
		{"changed record", nil, func(t *testing.T, b *Bundle) {
			editLines(b, func(l [][]byte) [][]byte {
				l[6] = bytes.Replace(l[6], []byte(`"n":7`), []byte(`"n":8`), 1)
				return l
			})
		}, "record 7: hash does not match"},
		{"one byte in a string", nil, func(t *testing.T, b *Bundle) {
			editLines(b, func(l [][]byte) [][]byte {
				l[12] = bytes.Replace(l[12], []byte(`test.record`), []byte(`test.recorc`), 1)
				return l
			})
		}, "record 13: hash does not match"},
		{"removed record", nil, func(t *testing.T, b *Bundle) {
			editLines(b, func(l [][]byte) [][]byte { return append(l[:4], l[5:]...) })
		}, "record 5: line 5 holds seq 6"},
		{"inserted record", nil, func(t *testing.T, b *Bundle) {
			editLines(b, func(l [][]byte) [][]byte {
				extra := append([]byte(nil), l[3]...)
				return append(l[:4], append([][]byte{extra}, l[4:]...)...)
			})
		}, "record 5: line 5 holds seq 4"},
		{"reordered records", nil, func(t *testing.T, b *Bundle) {
			editLines(b, func(l [][]byte) [][]byte { l[2], l[3] = l[3], l[2]; return l })
		}, "record 3: line 3 holds seq 4"},
		{"rebuilt chain after a change", nil, func(t *testing.T, b *Bundle) {
			rechain(t, b, 17, func(r *Record) { r.Subject = "rewritten" })
		}, "checkpoint 20: head does not match"},
		{"tail does not chain to checkpoint", nil, func(t *testing.T, b *Bundle) {
			// drop the final checkpoint so 21..30 are a tail, then break its chain at 25
			dropCheckpoint(b, 30)
			rechain(t, b, 25, func(r *Record) { r.Prev[0] ^= 1 })
		}, "record 25: prev does not match"},
		{"forged checkpoint signature", nil, func(t *testing.T, b *Bundle) {
			editCheckpoint(t, b, 10, func(cp *SignedCheckpoint) {
				sig, _ := Sign(other.key, cp.Text())
				cp.Signature = sig
			})
		}, "checkpoint 10: signature does not verify"},
		{"missing checkpoint signature", nil, func(t *testing.T, b *Bundle) {
			editCheckpoint(t, b, 20, func(cp *SignedCheckpoint) { cp.Signature = nil })
		}, "checkpoint 20: missing signature"},
		{"forged witness signature", nil, func(t *testing.T, b *Bundle) {
			lines := splitLines(b.Files[FileWitnesses])
			w, _ := ParseWitnessLine(lines[1])
			cp := Checkpoint{Tenant: "clinic", Size: 20, Head: w.Head, Time: w.Time}
			w.Signature, _ = Sign(other.witnessKey, cp.Text())
			lines[1] = WitnessLine(w)
			b.Files[FileWitnesses] = append(bytes.Join(lines, []byte("\n")), '\n')
		}, "witness col1 on checkpoint 20: signature does not verify"},
		{"key not chaining to the anchor", nil, func(t *testing.T, b *Bundle) {
			// a whole bundle made by another CA's key, checked against ours
			c := buildLog(t, other, "clinic", 5, 5, true)
			nb := writeRead(t, c, other)
			*b = *nb
		}, "evidence-pub.pem: key does not chain"},
		{"wrong key fingerprint", func(Report) VerifyOptions {
			return VerifyOptions{KeyFingerprint: strings.Repeat("ab", 32)}
		}, func(t *testing.T, b *Bundle) {}, "evidence-pub.pem: fingerprint"},
		{"manifest does not match", nil, func(t *testing.T, b *Bundle) {
			b.Files[FileReadme] = append(b.Files[FileReadme], "edited\n"...)
		}, "manifest.json: README.txt does not match"},
		{"extra file", nil, func(t *testing.T, b *Bundle) {
			b.Files["notes.txt"] = []byte("hi")
		}, "manifest.json: does not list notes.txt"},
		{"forged manifest signature", nil, func(t *testing.T, b *Bundle) {
			b.Files[FileManifestSig], _ = Sign(other.key, b.Files[FileManifest])
		}, "manifest.sig: does not verify"},
		{"missing manifest signature", nil, func(t *testing.T, b *Bundle) {
			delete(b.Files, FileManifestSig)
		}, "manifest.sig: missing signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := writeRead(t, good, p)
			opts := VerifyOptions{Roots: p.roots}
			if tt.opts != nil {
				opts = tt.opts(Report{})
			}
			tt.edit(t, b)
			// round-trip through the archive format, as a tampered file would be
			var buf bytes.Buffer
			if _, err := b.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			raw := buf.Bytes()
			b, err := ReadBundle(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			_, err = b.Verify(opts)
			var f *Failure
			if !errors.As(err, &f) {
				t.Fatalf("Verify = %v, want a *Failure starting %q", err, tt.wants)
			}
			if !strings.HasPrefix(err.Error(), tt.wants) {
				t.Errorf("Verify = %q, want it to start with %q", err, tt.wants)
			}
			// streaming verification names the same failure
			_, serr := VerifyReader(bytes.NewReader(raw), opts, nil)
			if serr == nil || serr.Error() != err.Error() {
				t.Errorf("VerifyReader = %v, Verify = %v", serr, err)
			}
		})
	}
}

// rechain changes record seq with fn and rebuilds every hash from there, as an attacker
// without the signing key would.
func rechain(t *testing.T, b *Bundle, seq int, fn func(*Record)) {
	editLines(b, func(l [][]byte) [][]byte {
		var prev Hash
		for i := range l {
			body, h, err := SplitLine(l[i])
			if err != nil {
				t.Fatal(err)
			}
			if i+1 < seq {
				prev = h
				continue
			}
			r, err := ParseBody(body)
			if err != nil {
				t.Fatal(err)
			}
			if i+1 == seq {
				fn(&r)
			} else {
				r.Prev = prev
			}
			body = r.Body()
			prev = ChainHash(r.Prev, LeafHash(body))
			l[i] = Line(body, prev)
		}
		return l
	})
}

func editCheckpoint(t *testing.T, b *Bundle, size uint64, fn func(*SignedCheckpoint)) {
	lines := splitLines(b.Files[FileCheckpoints])
	for i, line := range lines {
		cp, err := ParseCheckpointLine(line)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size == size {
			fn(&cp)
			lines[i] = CheckpointLine(cp)
		}
	}
	b.Files[FileCheckpoints] = append(bytes.Join(lines, []byte("\n")), '\n')
}

func dropCheckpoint(b *Bundle, size uint64) {
	var keep [][]byte
	for _, line := range splitLines(b.Files[FileCheckpoints]) {
		if cp, _ := ParseCheckpointLine(line); cp.Size != size {
			keep = append(keep, line)
		}
	}
	b.Files[FileCheckpoints] = append(bytes.Join(keep, []byte("\n")), '\n')
	var wkeep [][]byte
	for _, line := range splitLines(b.Files[FileWitnesses]) {
		if w, _ := ParseWitnessLine(line); w.Size != size {
			wkeep = append(wkeep, line)
		}
	}
	b.Files[FileWitnesses] = append(bytes.Join(wkeep, []byte("\n")), '\n')
}

func TestCanonical(t *testing.T) {
	got, err := Canonical(map[string]any{"b": 1.5, "a": []any{"x\n\"<>&", nil, true},
		"é": map[string]int{"z": 1, "y": 2}}, strings.ToUpper)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":["X\n\"<>&",null,true],"b":1.5,"é":{"y":2,"z":1}}`
	if string(got) != want {
		t.Errorf("Canonical = %s, want %s", got, want)
	}
	if !json.Valid(got) {
		t.Error("not valid JSON")
	}
}

func TestRecordBodyRoundTrip(t *testing.T) {
	r := Record{Seq: 3, Time: epoch, Tenant: "t", Type: "x.y", Actor: Actor{"agent", "a1"},
		Subject: "tab\there \x01", Data: json.RawMessage(`{"k":"v"}`)}
	r.Prev[0] = 0xab
	body := r.Body()
	want := `{"seq":3,"time":"2026-01-02T03:04:05.0000006Z","tenant":"t","type":"x.y",` +
		`"actor":{"kind":"agent","id":"a1"},"subject":"tab\there \u0001","data":{"k":"v"},` +
		`"prev":"ab` + strings.Repeat("0", 62) + `"}`
	if string(body) != want {
		t.Errorf("Body =\n%s\nwant\n%s", body, want)
	}
	back, err := ParseBody(body)
	if err != nil {
		t.Fatal(err)
	}
	if string(back.Body()) != string(body) {
		t.Errorf("round trip changed the body: %s", back.Body())
	}
	line := Line(body, r.Hash())
	gotBody, h, err := SplitLine(line)
	if err != nil || string(gotBody) != string(body) || h != r.Hash() {
		t.Errorf("SplitLine = %s, %v, %v", gotBody, h, err)
	}
}

func TestCheckpointText(t *testing.T) {
	cp := Checkpoint{Tenant: "clinic", Size: 42, Time: epoch}
	cp.Head[31] = 1
	back, err := ParseCheckpointText(cp.Text())
	if err != nil || back.Size != 42 || back.Head != cp.Head || !back.Time.Equal(epoch) {
		t.Errorf("ParseCheckpointText = %+v, %v", back, err)
	}
	if _, err := ParseCheckpointText(append(cp.Text(), 'x')); err == nil {
		t.Error("ParseCheckpointText accepted trailing bytes")
	}
}

func BenchmarkVerify(b *testing.B) {
	p := newPKI(b, "clinic")
	const n = 100000
	bundle := writeRead(b, buildLog(b, p, "clinic", n, 10000, true), p)
	b.ResetTimer()
	for range b.N {
		if _, err := bundle.Verify(VerifyOptions{Roots: p.roots}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}
