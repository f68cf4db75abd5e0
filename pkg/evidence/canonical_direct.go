package evidence

import (
	"slices"
	"strconv"
	"unicode/utf8"
)

// appendDirect writes the canonical JSON of v without the marshal and decode round trip,
// for the values recorders pass most: nil, strings, booleans, integers,
// map[string]any, map[string]string, []any and []string, nested. It reports false for
// anything else (floats, structs, time.Time, invalid UTF-8, ...), and the caller then takes
// the general path, which gives the same bytes for what appendDirect handles.
func appendDirect(b []byte, v any, str func(string) string) ([]byte, bool) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), true
	case string:
		if !utf8.ValidString(v) {
			return b, false
		}
		if str != nil {
			v = str(v)
		}
		return appendString(b, v), true
	case bool:
		return strconv.AppendBool(b, v), true
	case int:
		return strconv.AppendInt(b, int64(v), 10), true
	case int64:
		return strconv.AppendInt(b, v, 10), true
	case int32:
		return strconv.AppendInt(b, int64(v), 10), true
	case uint64:
		return strconv.AppendUint(b, v, 10), true
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10), true
	case uint:
		return strconv.AppendUint(b, uint64(v), 10), true
	case map[string]any:
		if v == nil {
			return append(b, "null"...), true
		}
		keys, ok := sortedKeys(v)
		if !ok {
			return b, false
		}
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			if b, ok = appendDirect(b, v[k], str); !ok {
				return b, false
			}
		}
		return append(b, '}'), true
	case map[string]string:
		if v == nil {
			return append(b, "null"...), true
		}
		keys, ok := sortedKeys(v)
		if !ok {
			return b, false
		}
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			if b, ok = appendDirect(b, v[k], str); !ok {
				return b, false
			}
		}
		return append(b, '}'), true
	case []any:
		return appendSlice(b, v, str)
	case []string:
		return appendSlice(b, v, str)
	}
	return b, false
}

func appendSlice[E any](b []byte, v []E, str func(string) string) ([]byte, bool) {
	if v == nil {
		return append(b, "null"...), true
	}
	b = append(b, '[')
	for i, e := range v {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = appendDirect(b, e, str); !ok {
			return b, false
		}
	}
	return append(b, ']'), true
}

// sortedKeys returns m's keys sorted by their bytes; false when one is not valid UTF-8
// (encoding/json would rewrite it).
func sortedKeys[V any](m map[string]V) ([]string, bool) {
	keys := make([]string, 0, len(m))
	for k := range m {
		if !utf8.ValidString(k) {
			return nil, false
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, true
}
