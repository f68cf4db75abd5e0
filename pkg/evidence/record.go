// Package evidence defines Ward's evidence log format and verifies it offline, with the
// standard library only, so that an auditor can check a bundle without trusting the MSP
// or running a controller. docs/evidence.md describes the same format in prose, precisely
// enough to write a verifier in another language.
//
// A tenant's log is a sequence of records numbered from 1. Each record is stored as one
// line of canonical JSON (see Record.Body). Its leaf hash is SHA-256 of that body, and its
// chain hash is SHA-256(previous chain hash || leaf hash), with 32 zero bytes before the
// first record. The body holds the previous chain hash ("prev"); a bundle line appends the
// record's own chain hash ("hash"). A checkpoint signs (tenant, size, chain hash of record
// size, time) with the controller's evidence key; witnesses countersign the same bytes.
package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
)

// Hash is a SHA-256 digest.
type Hash [32]byte

// String returns the hash in lowercase hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash parses 64 lowercase hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 64 || !isLowerHex(s) {
		return h, fmt.Errorf("evidence: hash %q: want 64 lowercase hex digits", s)
	}
	_, _ = hex.Decode(h[:], []byte(s))
	return h, nil
}

// lowerHex marks the bytes 0-9 and a-f.
var lowerHex = func() (t [256]bool) {
	for _, c := range "0123456789abcdef" {
		t[c] = true
	}
	return t
}()

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !lowerHex[s[i]] {
			return false
		}
	}
	return true
}

// Actor is who caused a record: Kind is "agent", "operator" or "controller".
type Actor struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// Record is one entry of a tenant's log.
type Record struct {
	Seq     uint64          `json:"seq"`     // 1 for the first record
	Time    time.Time       `json:"time"`    // encoded in UTC
	Tenant  string          `json:"tenant"`  // the log's tenant
	Type    string          `json:"type"`    // e.g. "agent.enrolled"
	Actor   Actor           `json:"actor"`   // who acted
	Subject string          `json:"subject"` // what it is about
	Data    json.RawMessage `json:"data"`    // canonical JSON (Canonical); "null" when none
	Prev    Hash            `json:"-"`       // chain hash of record Seq-1, zero for Seq 1
}

// Body returns the record's canonical encoding: a JSON object with exactly the members
// seq, time, tenant, type, actor (kind, id), subject, data, prev in that order, no
// whitespace, strings escaped as Canonical does, time in RFC 3339 with nanoseconds and
// trailing zeros dropped, in UTC ("Z"), prev in lowercase hex. Data must already be
// canonical (Canonical); empty Data is written as null.
func (r Record) Body() []byte {
	b := make([]byte, 0, 192+len(r.Data)+len(r.Subject))
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"time":`...)
	b = appendString(b, r.Time.UTC().Format(time.RFC3339Nano))
	b = append(b, `,"tenant":`...)
	b = appendString(b, r.Tenant)
	b = append(b, `,"type":`...)
	b = appendString(b, r.Type)
	b = append(b, `,"actor":{"kind":`...)
	b = appendString(b, r.Actor.Kind)
	b = append(b, `,"id":`...)
	b = appendString(b, r.Actor.ID)
	b = append(b, `},"subject":`...)
	b = appendString(b, r.Subject)
	b = append(b, `,"data":`...)
	if len(r.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, r.Data...)
	}
	b = append(b, `,"prev":"`...)
	b = hex.AppendEncode(b, r.Prev[:])
	b = append(b, `"}`...)
	return b
}

// LeafHash returns SHA-256 of a record body.
func LeafHash(body []byte) Hash { return sha256.Sum256(body) }

// ChainHash returns SHA-256(prev || leaf), the chain hash of a record whose previous
// record's chain hash is prev.
func ChainHash(prev, leaf Hash) Hash {
	var buf [64]byte
	copy(buf[:32], prev[:])
	copy(buf[32:], leaf[:])
	return sha256.Sum256(buf[:])
}

// Hash returns the record's chain hash.
func (r Record) Hash() Hash { return ChainHash(r.Prev, LeafHash(r.Body())) }

// hashSuffixLen is the length of `,"hash":"<64 hex>"}`.
const hashSuffixLen = len(`,"hash":"`) + 64 + len(`"}`)

// Line returns the record's line in a bundle: the body with a last member "hash" holding
// the record's chain hash, hash, in lowercase hex. No newline.
func Line(body []byte, hash Hash) []byte {
	b := make([]byte, 0, len(body)+hashSuffixLen)
	b = append(b, body[:len(body)-1]...)
	b = append(b, `,"hash":"`...)
	b = hex.AppendEncode(b, hash[:])
	return append(b, `"}`...)
}

// SplitLine splits a bundle line into the record body and the hash it claims.
func SplitLine(line []byte) (body []byte, claimed Hash, err error) {
	n := len(line)
	if n < hashSuffixLen+2 || !bytes.HasPrefix(line[n-hashSuffixLen:], []byte(`,"hash":"`)) ||
		!bytes.HasSuffix(line, []byte(`"}`)) {
		return nil, claimed, errors.New(`line does not end with a "hash" member`)
	}
	claimed, err = ParseHash(string(line[n-hashSuffixLen+9 : n-2]))
	if err != nil {
		return nil, claimed, err
	}
	body = make([]byte, 0, n-hashSuffixLen+1)
	body = append(body, line[:n-hashSuffixLen]...)
	return append(body, '}'), claimed, nil
}

// Canonical returns the canonical JSON encoding of v: v is first marshaled with
// encoding/json; then objects get their members sorted by the bytes of their UTF-8 names,
// all whitespace outside strings is dropped, numbers keep their literal text, and strings
// are written as UTF-8 with only '"', '\\' and control characters escaped (\b \f \n \r \t,
// others as \u00xx). When str is not nil, every string value (not object member names)
// passes through it first, which is how the recorder scrubs PHI.
func Canonical(v any, str func(string) string) ([]byte, error) {
	if b, ok := appendDirect(nil, v, str); ok {
		return b, nil
	}
	return canonicalGeneral(v, str)
}

// canonicalGeneral is Canonical through encoding/json, for every value it can marshal.
func canonicalGeneral(v any, str func(string) string) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonical: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, fmt.Errorf("canonical: %w", err)
	}
	return appendCanonical(nil, tree, str), nil
}

func appendCanonical(b []byte, v any, str func(string) string) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, v)
	case json.Number:
		return append(b, v...)
	case string:
		if str != nil {
			v = str(v)
		}
		return appendString(b, v)
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, e, str)
		}
		return append(b, ']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendCanonical(b, v[k], str)
		}
		return append(b, '}')
	}
	panic(fmt.Sprintf("evidence: canonical: unexpected %T", v))
}

// appendString writes s as a canonical JSON string. Invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, "\ufffd"...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
	}
	return append(b, '"')
}
