package classify

import "strings"

// corpus is everything a host said about itself, lower-cased (ASCII only, so offsets
// match the original), one field after another, with the source of each field.
type corpus struct {
	lower  []byte
	orig   []byte
	ends   []int    // ends[i] is the offset just past field i
	wheres []string // wheres[i] says where field i came from
}

func (c *corpus) add(where, s string) {
	if s == "" {
		return
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		c.orig = append(c.orig, b)
		if b >= 'A' && b <= 'Z' {
			b += 'a' - 'A'
		}
		c.lower = append(c.lower, b)
	}
	c.orig = append(c.orig, '\n')
	c.lower = append(c.lower, '\n')
	c.ends = append(c.ends, len(c.lower))
	c.wheres = append(c.wheres, where)
}

// hit is one keyword found in a corpus.
type hit struct {
	kw    *keyword
	where string
	text  string // the matched words as the host spelled them
}

// matcher finds a table's keywords in a corpus in one pass: keywords are bucketed by
// their first two bytes.
type matcher struct {
	keywords []keyword
	buckets  map[uint16][]int32
	first    [256]bool // a keyword starts with this byte
}

func newMatcher(kws []keyword) *matcher {
	m := &matcher{keywords: kws, buckets: make(map[uint16][]int32)}
	for i, kw := range kws {
		if len(kw.word) < 2 || strings.ToLower(kw.word) != kw.word {
			panic("classify: keyword must be lower case and at least two bytes: " + kw.word)
		}
		k := uint16(kw.word[0])<<8 | uint16(kw.word[1])
		m.buckets[k] = append(m.buckets[k], int32(i))
		m.first[kw.word[0]] = true
	}
	return m
}

// find calls fn once for each keyword present in c, with the first place it occurs.
func (m *matcher) find(c *corpus, fn func(hit)) {
	var seen []bool
	s := c.lower
	for i := 0; i+1 < len(s); i++ {
		if !m.first[s[i]] {
			continue
		}
		bucket := m.buckets[uint16(s[i])<<8|uint16(s[i+1])]
		for _, ki := range bucket {
			kw := &m.keywords[ki]
			if !hasWordAt(s, i, kw) {
				continue
			}
			if seen == nil {
				seen = make([]bool, len(m.keywords))
			}
			if seen[ki] {
				continue
			}
			seen[ki] = true
			fn(hit{kw: kw, where: c.whereAt(i), text: string(c.orig[i : i+len(kw.word)])})
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

func (c *corpus) whereAt(off int) string {
	for i, end := range c.ends {
		if off < end {
			return c.wheres[i]
		}
	}
	return ""
}

// containsFold reports whether s contains the lower-case word sub, ignoring ASCII case.
func containsFold(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
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
