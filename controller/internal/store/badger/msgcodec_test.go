package badger

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
)

func TestMessageCodec(t *testing.T) {
	at := time.Date(2026, 12, 4, 7, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		m    store.Message
	}{
		{"heartbeat", store.Message{Type: "heartbeat", CreatedAt: at, ReceivedAt: at.Add(time.Millisecond),
			Body: []byte{0x08, 0x01, 0x12, 0x00}}},
		{"zero times and no body", store.Message{Type: "drift_report"}},
		{"no type", store.Message{CreatedAt: at, Body: []byte("x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := encodeMessage(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeMessage(v, "clinic-a", "a1", 7)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.m
			want.Tenant, want.Agent, want.Seq = "clinic-a", "a1", 7
			if got.Tenant != want.Tenant || got.Agent != want.Agent || got.Seq != want.Seq ||
				got.Type != want.Type || !got.CreatedAt.Equal(want.CreatedAt) ||
				!got.ReceivedAt.Equal(want.ReceivedAt) || string(got.Body) != string(want.Body) {
				t.Fatalf("decoded %+v, want %+v", got, want)
			}
			if got.CreatedAt.IsZero() != want.CreatedAt.IsZero() {
				t.Errorf("created at %v, want zero %v", got.CreatedAt, want.CreatedAt.IsZero())
			}
			v[len(v)-1] ^= 0xff // the body must not share the value's bytes
			if len(want.Body) > 0 && string(got.Body) != string(want.Body) {
				t.Error("decoded body shares the stored value")
			}
		})
	}
}

// TestMessageCodecReadsJSON reads what stores wrote before the binary form.
func TestMessageCodecReadsJSON(t *testing.T) {
	old := store.Message{Tenant: "clinic-a", Agent: "a1", Seq: 3, Type: "heartbeat",
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Body: []byte("body")}
	v, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMessage(v, "clinic-a", "a1", 3)
	if err != nil || got.Seq != 3 || got.Type != "heartbeat" || string(got.Body) != "body" ||
		!got.CreatedAt.Equal(old.CreatedAt) {
		t.Fatalf("decoded %+v, %v; want %+v", got, err, old)
	}
}

func TestMessageCodecRefuses(t *testing.T) {
	good, err := encodeMessage(store.Message{Type: "heartbeat", Body: []byte("b")})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		v    []byte
		want string
	}{
		{"empty", nil, "unknown message format"},
		{"unknown format", []byte{0x02, 0x00}, "unknown message format"},
		{"bad json", []byte("{"), "unexpected end"},
		{"truncated times", good[:10], "truncated"},
		{"type longer than the value", []byte{messageFormat, 60, 'h'}, "truncated"},
		{"type too long", append([]byte{messageFormat, 100}, make([]byte, 120)...), "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeMessage(tt.v, "clinic-a", "a1", 1)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("decode: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := encodeMessage(store.Message{Type: strings.Repeat("x", 65)}); err == nil {
		t.Error("encoded a type of 65 bytes")
	}
}
