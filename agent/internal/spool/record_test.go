package spool

import (
	"bytes"
	"errors"
	"testing"
)

func TestRecordRoundTripAndDamage(t *testing.T) {
	r := record{seq: 42, kind: KindDriftReport, payload: []byte("hello")}
	b := encodeRecord(nil, r)

	got, n, err := decodeRecord(b)
	if err != nil || n != len(b) || got.seq != 42 || got.kind != KindDriftReport ||
		!bytes.Equal(got.payload, r.payload) {
		t.Fatalf("decode = %+v, %d, %v", got, n, err)
	}

	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, errShort},
		{"header only", b[:headerSize], errShort},
		{"missing last byte", b[:len(b)-1], errShort},
		{"zeros", make([]byte, 64), errCorrupt},
		{"flipped payload bit", flip(b, len(b)-1), errCorrupt},
		{"flipped seq bit", flip(b, 9), errCorrupt},
		{"huge length", append([]byte{0xff, 0xff, 0xff, 0xff}, b[4:]...), errCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := decodeRecord(tt.b); !errors.Is(err, tt.want) {
				t.Errorf("decodeRecord = %v, want %v", err, tt.want)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x10
	return c
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(nil, record{seq: 1, kind: KindHeartbeat, payload: nil}))
	f.Add(encodeRecord(nil, record{seq: 1<<63 + 5, kind: KindCommandResult,
		payload: []byte("payload")}))
	f.Add(make([]byte, headerSize))
	f.Add([]byte{0, 0, 0, 1})

	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, errShort) && !errors.Is(err, errCorrupt) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if n < headerSize || n > len(b) || r.seq == 0 || !r.kind.valid() {
			t.Fatalf("accepted an invalid record: %+v n=%d len=%d", r, n, len(b))
		}
		if again := encodeRecord(nil, r); !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoding differs from the input")
		}
	})
}
