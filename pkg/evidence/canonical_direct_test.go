package evidence

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestCanonicalDirectMatchesGeneral checks that the direct encoder gives the bytes of the
// marshal-and-decode path for every kind of value it takes, and that values it does not
// take still encode.
func TestCanonicalDirectMatchesGeneral(t *testing.T) {
	upper := strings.ToUpper
	values := []any{
		nil, "", "plain", "quote \" backslash \\ nl \n tab \t bell \a <&> /", "é ü 日本 \u2028",
		true, false, 0, -7, int64(-1 << 62), int32(5), uint64(1 << 63), uint32(9), uint(3),
		map[string]any{"b": 1, "a": "x", "é": true, "A": nil, "nested": map[string]any{
			"z": []any{1, "two", map[string]string{"k": "v"}, []string{"a", "b"}}}},
		map[string]string{"exit": "0", "output": "ok"}, map[string]any{}, []any{},
		[]string{}, map[string]any(nil), []any(nil), []string(nil), map[string]string(nil),
		map[string]any{"float": 1.5}, map[string]any{"time": time.Unix(1, 5).UTC()},
		map[string]any{"bad": "\xff\xfe"}, "\xffbad", json.Number("12"),
		struct {
			A int `json:"a"`
		}{3},
	}
	for _, v := range values {
		for _, str := range []func(string) string{nil, upper} {
			got, err := Canonical(v, str)
			if err != nil {
				t.Fatalf("Canonical(%#v): %v", v, err)
			}
			want, err := canonicalGeneral(v, str)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("Canonical(%#v) = %s, general path %s", v, got, want)
			}
		}
	}
}

func BenchmarkCanonical(b *testing.B) {
	v := map[string]any{"exit": 0, "output": "service restarted; 3 files changed"}
	for b.Loop() {
		if _, err := Canonical(v, nil); err != nil {
			b.Fatal(err)
		}
	}
}
