package classify

import (
	"slices"
	"strings"
)

// corpus is everything a host said about itself, lower-cased (ASCII only, so offsets
// match the original), one field after another, with the source of each field.
type corpus struct {
	lower  []byte
	ends   []int    // ends[i] is the offset just past field i (and its separator)
	srcs   []string // srcs[i] is field i as the host spelled it
	wheres []where  // wheres[i] says where field i came from
}

// where is the source of a corpus field: a label, and the port when it came from one.
type where struct {
	label string
	svc   *Service
}

func (w where) String() string {
	if w.svc == nil {
		return w.label
	}
	return w.label + " on " + portName(w.svc)
}

// reset empties the corpus, keeping room for everything h may add.
func (c *corpus) reset(h *Host) {
	n := len(h.SysDescr) + 64
	for i := range h.Services {
		s := &h.Services[i]
		n += len(s.Product) + len(s.ExtraInfo) + len(s.DeviceType) + 3
		for _, sc := range s.Scripts {
			n += len(sc.Output) + 1
		}
	}
	for _, sc := range h.Scripts {
		n += len(sc.Output) + 1
	}
	for _, o := range h.OS {
		n += len(o.Name) + 1
	}
	c.lower = slices.Grow(c.lower[:0], n)
	c.ends = c.ends[:0]
	c.srcs = c.srcs[:0]
	c.wheres = c.wheres[:0]
}

func (c *corpus) add(label string, svc *Service, s string) {
	if s == "" {
		return
	}
	start := len(c.lower)
	c.lower = append(c.lower, s...)
	low := c.lower[start:]
	for i, b := range low {
		if b >= 'A' && b <= 'Z' {
			low[i] = b + 'a' - 'A'
		}
	}
	c.lower = append(c.lower, '\n')
	c.ends = append(c.ends, len(c.lower))
	c.srcs = append(c.srcs, s)
	c.wheres = append(c.wheres, where{label, svc})
}

// hit is one keyword found in a corpus.
type hit struct {
	kw    *keyword
	where where
	text  string // the matched words as the host spelled them
}

// matcher finds a table's keywords in a corpus in one pass: keywords are bucketed by
// their first two bytes.
type matcher struct {
	keywords []keyword
	bucketOf []uint16  // first two bytes -> 1 + index in buckets; 0 for none
	buckets  [][]int32 // keyword indexes sharing their first two bytes
	first    [256]bool // a keyword starts with this byte
}

func newMatcher(kws []keyword) *matcher {
	m := &matcher{keywords: kws, bucketOf: make([]uint16, 1<<16)}
	for i, kw := range kws {
		if len(kw.word) < 2 || strings.ToLower(kw.word) != kw.word {
			panic("classify: keyword must be lower case and at least two bytes: " + kw.word)
		}
		k := uint16(kw.word[0])<<8 | uint16(kw.word[1])
		if m.bucketOf[k] == 0 {
			if len(m.buckets) == 1<<16-1 {
				panic("classify: too many keyword prefixes")
			}
			m.buckets = append(m.buckets, nil)
			m.bucketOf[k] = uint16(len(m.buckets))
		}
		b := int(m.bucketOf[k]) - 1
		m.buckets[b] = append(m.buckets[b], int32(i))
		m.first[kw.word[0]] = true
	}
	return m
}

// find calls fn once for each keyword present in c, with the first place it occurs.
// Keywords match only where a word starts (after a byte that is not a letter or digit),
// so "ups" is found in "Smart-UPS" but not in "groups".
func (m *matcher) find(c *corpus, fn func(hit)) {
	var seenBuf [16]int32
	seen := seenBuf[:0] // keyword indexes already reported
	s := c.lower
	for i := 0; i+1 < len(s); i++ {
		if i > 0 && isWordByte(s[i-1]) || !m.first[s[i]] {
			continue
		}
		b := m.bucketOf[uint16(s[i])<<8|uint16(s[i+1])]
		if b == 0 {
			continue
		}
		for _, ki := range m.buckets[b-1] {
			kw := &m.keywords[ki]
			if !hasWordAt(s, i, kw) {
				continue
			}
			if slices.Contains(seen, ki) {
				continue
			}
			seen = append(seen, ki)
			k := c.fieldAt(i)
			start := 0
			if k > 0 {
				start = c.ends[k-1]
			}
			fn(hit{kw: kw, where: c.wheres[k],
				text: c.srcs[k][i-start : i-start+len(kw.word)]})
		}
	}
}

func hasWordAt(s []byte, i int, kw *keyword) bool {
	end := i + len(kw.word)
	if end > len(s) || string(s[i:end]) != kw.word {
		return false
	}
	if !kw.whole {
		return true
	}
	return (i == 0 || !isWordByte(s[i-1])) && (end == len(s) || !isWordByte(s[end]))
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b >= 0x80
}

// fieldAt returns the index of the field holding offset off.
func (c *corpus) fieldAt(off int) int {
	for i, end := range c.ends {
		if off < end {
			return i
		}
	}
	return len(c.ends) - 1
}

// containsFold reports whether s contains the lower-case word sub, ignoring ASCII case.
func containsFold(s, sub string) bool {
	n := len(sub)
	if n == 0 {
		return true
	}
	first, upper := sub[0], sub[0]
	if first >= 'a' && first <= 'z' {
		upper = first - ('a' - 'A')
	}
	for i := 0; i+n <= len(s); i++ {
		if s[i] != first && s[i] != upper {
			continue
		}
		match := true
		for j := 0; j < n; j++ {
			b := s[i+j]
			if b >= 'A' && b <= 'Z' {
				b += 'a' - 'A'
			}
			if b != sub[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}
