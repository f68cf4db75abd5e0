package evidence

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// bodyScanner reads a record body in canonical member order without encoding/json's
// reflection: verification reads hundreds of thousands of records a second this way.
type bodyScanner struct {
	b   []byte
	pos int
	err error
}

var errNotCanonical = errors.New("record is not in canonical form")

func (s *bodyScanner) fail(what string) {
	if s.err == nil {
		s.err = fmt.Errorf("%w: at byte %d: %s", errNotCanonical, s.pos, what)
	}
}

// lit consumes the literal text t.
func (s *bodyScanner) lit(t string) {
	if s.err != nil {
		return
	}
	if len(s.b)-s.pos < len(t) || string(s.b[s.pos:s.pos+len(t)]) != t {
		s.fail("want " + strconv.Quote(t))
		return
	}
	s.pos += len(t)
}

func (s *bodyScanner) uint() uint64 {
	if s.err != nil {
		return 0
	}
	start := s.pos
	for s.pos < len(s.b) && s.b[s.pos] >= '0' && s.b[s.pos] <= '9' {
		s.pos++
	}
	n, err := strconv.ParseUint(string(s.b[start:s.pos]), 10, 64)
	if err != nil || (s.pos-start > 1 && s.b[start] == '0') {
		s.fail("want an unsigned integer")
	}
	return n
}

// str consumes a JSON string and returns its value.
func (s *bodyScanner) str() string {
	if s.err != nil {
		return ""
	}
	if s.pos >= len(s.b) || s.b[s.pos] != '"' {
		s.fail("want a string")
		return ""
	}
	s.pos++
	start := s.pos
	for s.pos < len(s.b) {
		c := s.b[s.pos]
		switch {
		case c == '"':
			v := string(s.b[start:s.pos])
			s.pos++
			return v
		case c == '\\':
			return s.escapedStr(start)
		case c < 0x20:
			s.fail("control character in string")
			return ""
		}
		s.pos++
	}
	s.fail("unterminated string")
	return ""
}

// escapedStr finishes a string with escapes from s.pos, whose plain prefix starts at start.
func (s *bodyScanner) escapedStr(start int) string {
	out := append([]byte(nil), s.b[start:s.pos]...)
	for s.pos < len(s.b) {
		c := s.b[s.pos]
		switch {
		case c == '"':
			s.pos++
			return string(out)
		case c < 0x20:
			s.fail("control character in string")
			return ""
		case c != '\\':
			out = append(out, c)
			s.pos++
			continue
		}
		if s.pos+1 >= len(s.b) {
			break
		}
		e := s.b[s.pos+1]
		s.pos += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := s.hex4()
			if utf16.IsSurrogate(r) && s.pos+6 <= len(s.b) && s.b[s.pos] == '\\' &&
				s.b[s.pos+1] == 'u' {
				s.pos += 2
				r = utf16.DecodeRune(r, s.hex4())
			}
			out = utf8.AppendRune(out, r)
		default:
			s.fail("bad escape")
			return ""
		}
	}
	s.fail("unterminated string")
	return ""
}

func (s *bodyScanner) hex4() rune {
	if s.pos+4 > len(s.b) {
		s.fail("short \\u escape")
		return 0
	}
	n, err := strconv.ParseUint(string(s.b[s.pos:s.pos+4]), 16, 16)
	if err != nil {
		s.fail("bad \\u escape")
	}
	s.pos += 4
	return rune(n)
}

// value consumes one JSON value and returns its bytes. It checks the structure (strings,
// nesting) but leaves full validation of numbers and literals to json.Valid.
func (s *bodyScanner) value() []byte {
	if s.err != nil {
		return nil
	}
	start := s.pos
	depth := 0
	for s.pos < len(s.b) {
		switch c := s.b[s.pos]; c {
		case '"':
			s.str()
			if s.err != nil {
				return nil
			}
		case '{', '[':
			depth++
			s.pos++
		case '}', ']':
			if depth == 0 {
				return s.finishValue(start)
			}
			depth--
			s.pos++
		case ',':
			if depth == 0 {
				return s.finishValue(start)
			}
			s.pos++
		default:
			s.pos++
		}
	}
	s.fail("unterminated value")
	return nil
}

func (s *bodyScanner) finishValue(start int) []byte {
	v := s.b[start:s.pos]
	if len(v) == 0 || !json.Valid(v) && len(v) < 64 {
		// short values (numbers, literals) are cheap to check fully here
		s.fail("bad value")
		return nil
	}
	return v
}

// scanBody decodes a canonical record body. The time is returned as its text; parse it
// with time.Parse(time.RFC3339Nano, ...) when needed.
func scanBody(body []byte) (r Record, timeText string, err error) {
	s := bodyScanner{b: body}
	s.lit(`{"seq":`)
	r.Seq = s.uint()
	s.lit(`,"time":`)
	timeText = s.str()
	s.lit(`,"tenant":`)
	r.Tenant = s.str()
	s.lit(`,"type":`)
	r.Type = s.str()
	s.lit(`,"actor":{"kind":`)
	r.Actor.Kind = s.str()
	s.lit(`,"id":`)
	r.Actor.ID = s.str()
	s.lit(`},"subject":`)
	r.Subject = s.str()
	s.lit(`,"data":`)
	r.Data = s.value()
	s.lit(`,"prev":"`)
	if s.err == nil {
		if s.pos+64 > len(s.b) {
			s.fail("short prev")
		} else {
			r.Prev, err = ParseHash(string(s.b[s.pos : s.pos+64]))
			if err != nil {
				s.fail("bad prev")
			}
			s.pos += 64
		}
	}
	s.lit(`"}`)
	if s.err == nil && s.pos != len(s.b) {
		s.fail("trailing bytes")
	}
	if s.err != nil {
		return Record{}, "", s.err
	}
	return r, timeText, nil
}

// ParseBody decodes a record body, which must be in the canonical form Record.Body
// writes. It checks the members' types, not the chain.
func ParseBody(body []byte) (Record, error) {
	r, ts, err := scanBody(body)
	if err != nil {
		return Record{}, err
	}
	if r.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
		return Record{}, fmt.Errorf("record time: %w", err)
	}
	return r, nil
}
