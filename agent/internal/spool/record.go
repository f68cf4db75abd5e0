package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// A record on disk is a fixed header followed by the payload:
//
//	[0:4]   payload length, big endian
//	[4:8]   CRC-32C of bytes [8:17+length]
//	[8:16]  sequence number, big endian, never zero
//	[16]    kind
//	[17:]   payload
//
// The checksum covers the sequence number, the kind and the payload, so a torn or
// zero-filled tail never decodes as a record.
const (
	headerSize = 17

	// MaxPayload is the largest payload Append accepts (4 MiB, the gRPC default message
	// limit). A length above it in a header marks the record as corrupt.
	MaxPayload = 4 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errShort reports that the buffer ends before the record does: a torn tail.
var errShort = errors.New("spool: record truncated")

// errCorrupt reports a record whose header or checksum is wrong.
var errCorrupt = errors.New("spool: record corrupt")

// record is one decoded spool entry.
type record struct {
	seq     uint64
	kind    Kind
	payload []byte
}

// size returns the bytes the record takes on disk.
func (r record) size() int64 { return int64(headerSize + len(r.payload)) }

// encodeRecord appends the on-disk form of r to dst.
func encodeRecord(dst []byte, r record) []byte {
	var h [headerSize]byte
	binary.BigEndian.PutUint32(h[0:4], uint32(len(r.payload)))
	binary.BigEndian.PutUint64(h[8:16], r.seq)
	h[16] = byte(r.kind)

	crc := crc32.Update(0, castagnoli, h[8:headerSize])
	crc = crc32.Update(crc, castagnoli, r.payload)
	binary.BigEndian.PutUint32(h[4:8], crc)

	dst = append(dst, h[:]...)
	return append(dst, r.payload...)
}

// decodeRecord decodes the record at the start of b and returns it with the number of bytes
// it took. The payload aliases b. It returns errShort when b ends inside the record and
// errCorrupt when the record cannot be valid.
func decodeRecord(b []byte) (record, int, error) {
	if len(b) < headerSize {
		return record{}, 0, errShort
	}

	n := binary.BigEndian.Uint32(b[0:4])
	if n > MaxPayload {
		return record{}, 0, fmt.Errorf("%w: length %d", errCorrupt, n)
	}
	total := headerSize + int(n)
	if len(b) < total {
		return record{}, 0, errShort
	}

	want := binary.BigEndian.Uint32(b[4:8])
	if got := crc32.Checksum(b[8:total], castagnoli); got != want {
		return record{}, 0, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}

	r := record{
		seq:     binary.BigEndian.Uint64(b[8:16]),
		kind:    Kind(b[16]),
		payload: b[headerSize:total],
	}
	if r.seq == 0 || !r.kind.valid() {
		return record{}, 0, fmt.Errorf("%w: seq %d kind %d", errCorrupt, r.seq, r.kind)
	}
	return r, total, nil
}
