package badger

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
)

// Messages are stored in a compact binary form: every agent message is one, tens of
// thousands a second, and the store writes each one three times or more (log, level 0,
// compactions), so its size is what the store's write path costs. The tenant, the agent
// and the sequence number are in the key and not repeated. Values written before this form
// existed are JSON objects, which always begin with '{'; both are read.
//
//	byte 0      messageFormat
//	uvarint     length of Type, then Type
//	8 bytes     CreatedAt, nanoseconds since the Unix epoch, big endian (0: zero time)
//	8 bytes     ReceivedAt, likewise
//	the rest    Body

// messageFormat marks the binary form; JSON begins with '{' instead.
const messageFormat = 0x01

// maxMessageType bounds the type name a value may carry.
const maxMessageType = 64

func encodeMessage(m store.Message) ([]byte, error) {
	if len(m.Type) > maxMessageType {
		return nil, fmt.Errorf("message type of %d bytes", len(m.Type))
	}
	b := make([]byte, 0, 1+1+len(m.Type)+16+len(m.Body))
	b = append(b, messageFormat)
	b = binary.AppendUvarint(b, uint64(len(m.Type)))
	b = append(b, m.Type...)
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano(m.CreatedAt)))
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano(m.ReceivedAt)))
	return append(b, m.Body...), nil
}

// decodeMessage decodes a stored message of tenant's agent with sequence number seq (from
// its key). v may be reused by the caller afterwards: nothing of m refers to it.
func decodeMessage(v []byte, tenant, agent string, seq uint64) (store.Message, error) {
	if len(v) > 0 && v[0] == '{' {
		var m store.Message
		if err := json.Unmarshal(v, &m); err != nil {
			return store.Message{}, err
		}
		return m, nil
	}
	if len(v) == 0 || v[0] != messageFormat {
		return store.Message{}, errors.New("unknown message format")
	}
	rest := v[1:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > maxMessageType || uint64(len(rest)-k) < n+16 {
		return store.Message{}, errors.New("truncated message")
	}
	rest = rest[k:]
	m := store.Message{Tenant: tenant, Agent: agent, Seq: seq, Type: string(rest[:n])}
	rest = rest[n:]
	m.CreatedAt = fromUnixNano(int64(binary.BigEndian.Uint64(rest)))
	m.ReceivedAt = fromUnixNano(int64(binary.BigEndian.Uint64(rest[8:])))
	m.Body = append([]byte(nil), rest[16:]...)
	return m, nil
}

// unixNano is t in nanoseconds since the Unix epoch, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
