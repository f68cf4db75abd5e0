// Package spool is the agent's bounded on-disk queue of messages that the controller has
// not yet acknowledged. It assigns the per-agent sequence numbers, survives kill -9 at any
// instant, and drops the oldest heartbeats (and only heartbeats) when it is full.
//
// On disk a spool is a directory of append-only segment files ("<first-seq>.seg") holding
// length-prefixed, CRC-checked records, plus state.json with the acknowledgement watermark
// and the next sequence number. Append writes a record and fsyncs it before returning
// (concurrent appends share one fsync). Ack records the watermark atomically and deletes
// segments that hold only acknowledged records. Opening a spool truncates a torn tail.
package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/wardsec/ward/pkg/logkey"
)

// Kind says what a spooled message is. The spool treats heartbeats specially (they may be
// dropped when it is full); the other kinds only label the record.
type Kind uint8

// The kinds of spooled messages, one per sequenced body of ward.v1.ConnectRequest.
const (
	KindHeartbeat Kind = 1 + iota
	KindDriftReport
	KindDiscoveryReport
	KindCommandResult
	KindWitnessSignature
)

func (k Kind) valid() bool { return k >= KindHeartbeat && k <= KindWitnessSignature }

// String returns a lower-case name for logs.
func (k Kind) String() string {
	switch k {
	case KindHeartbeat:
		return "heartbeat"
	case KindDriftReport:
		return "drift_report"
	case KindDiscoveryReport:
		return "discovery_report"
	case KindCommandResult:
		return "command_result"
	case KindWitnessSignature:
		return "witness_signature"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Defaults for Config.
const (
	DefaultMaxBytes     = 64 << 20
	defaultSegmentBytes = 4 << 20
	minSegmentBytes     = 4 << 10
)

// Errors callers branch on.
var (
	// ErrFull is returned by Append when the spool holds no heartbeat it could drop and the
	// message does not fit. Nothing was written; the caller should log it and try again
	// after the controller has acknowledged some messages.
	ErrFull = errors.New("spool: full of unacknowledged messages")
	// ErrTooLarge is returned by Append for a payload over MaxPayload or over the spool's
	// whole capacity.
	ErrTooLarge = errors.New("spool: message too large")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("spool: closed")
)

// Message is one spooled message.
type Message struct {
	Seq     uint64 // assigned by Append; never zero
	Kind    Kind
	Payload []byte // owned by the caller
}

// State describes the spool, for Hello and heartbeats.
type State struct {
	OldestSeq         uint64 // lowest unacknowledged seq; zero when empty
	NextSeq           uint64 // seq the next Append will assign
	Messages          uint64 // unacknowledged messages held
	Bytes             uint64 // bytes of segment files on disk
	DroppedHeartbeats uint64 // heartbeats dropped because the spool was full, ever
}

// Config configures Open.
type Config struct {
	// Dir is the spool directory; created (mode 0700) if missing. Required.
	Dir string
	// MaxBytes bounds the segment files on disk. Zero means DefaultMaxBytes.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file is started. Zero means
	// MaxBytes/8, capped at 4 MiB and at least 4 KiB.
	SegmentBytes int64
	// Log receives recovery and drop events. Required.
	Log *slog.Logger
}

// entry indexes one record of a segment.
type entry struct {
	seq  uint64
	kind Kind
	off  int64
	size int64
}

// segment is one segment file, kept open for appending (the last one) and reading.
type segment struct {
	path    string
	f       *os.File
	entries []entry // in seq order
	size    int64   // bytes in the file
}

func (g *segment) lastSeq() uint64 { return g.entries[len(g.entries)-1].seq }

// Spool is an open spool directory. All methods are safe for concurrent use. Close releases
// the files; the Spool is unusable afterwards.
//
// Known limitation: a record that is corrupt in the middle of a segment (a disk error, not
// a crash) ends recovery of that segment there; the records after it are dropped and logged.
type Spool struct {
	dir     string
	max     int64
	segMax  int64
	log     *slog.Logger
	appends chan struct{} // capacity 1; signalled when new messages become durable

	syncMu sync.Mutex // serialises fsync of the active segment; taken before mu

	mu      sync.Mutex // guards the fields below
	segs    []*segment // oldest first; the last one receives appends
	acked   uint64     // acknowledgement watermark
	nextSeq uint64
	written uint64 // highest seq written to a segment
	durable uint64 // highest seq known to be on stable storage; Pending shows no further
	count   uint64 // records in segs, acknowledged or not
	bytes   int64
	dropped uint64
	// fullLogged is set once dropping heartbeats has been logged at Warn, and cleared by
	// the next Ack, so a spool that stays full logs once.
	fullLogged bool
	broken     error // sticky: a failed write that could not be undone
	closed     bool
}

// Open opens or creates the spool in cfg.Dir and recovers it: temporary files of an
// interrupted rewrite are removed, a torn tail record is truncated, and segments holding
// only acknowledged records are deleted.
func Open(cfg Config) (*Spool, error) {
	switch {
	case cfg.Dir == "":
		return nil, errors.New("spool: no directory")
	case cfg.Log == nil:
		return nil, errors.New("spool: no logger")
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = min(cfg.MaxBytes/8, defaultSegmentBytes)
	}
	cfg.SegmentBytes = max(cfg.SegmentBytes, minSegmentBytes)

	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	m, err := readMeta(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}

	s := &Spool{
		dir:     cfg.Dir,
		max:     cfg.MaxBytes,
		segMax:  cfg.SegmentBytes,
		log:     cfg.Log,
		appends: make(chan struct{}, 1),
		acked:   m.Acked,
		dropped: m.DroppedHeartbeats,
	}
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("open spool: %w", err)
	}

	s.nextSeq = max(m.NextSeq, s.acked+1, s.written+1)
	s.durable = s.written
	return s, nil
}

// recover loads every segment in order, truncating torn tails and deleting segments that
// hold nothing unacknowledged.
func (s *Spool) recover() error {
	names, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}

	var segPaths []string
	for _, de := range names {
		name := de.Name()
		switch {
		case strings.HasSuffix(name, ".tmp"):
			if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
				return err
			}
		case strings.HasSuffix(name, ".seg"):
			segPaths = append(segPaths, filepath.Join(s.dir, name))
		}
	}
	sort.Strings(segPaths)

	for _, p := range segPaths {
		g, err := s.loadSegment(p)
		if err != nil {
			return err
		}
		if len(g.entries) == 0 || g.lastSeq() <= s.acked {
			if err := removeSegment(g); err != nil {
				return err
			}
			continue
		}
		s.segs = append(s.segs, g)
		s.count += uint64(len(g.entries))
		s.bytes += g.size
		s.written = g.lastSeq()
	}
	return nil
}

// loadSegment opens and scans one segment file. Records must follow every record already
// loaded in seq order; the first one that does not, or does not decode, ends the segment
// and the file is truncated there.
func (s *Spool) loadSegment(path string) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	g := &segment{path: path, f: f}

	data, err := os.ReadFile(path)
	if err != nil {
		f.Close()
		return nil, err
	}

	prev := s.written
	var off int64
	for off < int64(len(data)) {
		r, n, err := decodeRecord(data[off:])
		if err == nil && r.seq <= prev {
			err = fmt.Errorf("%w: seq %d after %d", errCorrupt, r.seq, prev)
		}
		if err != nil {
			s.log.Warn("spool truncating damaged tail", logkey.Path, path,
				"offset", off, "dropped_bytes", int64(len(data))-off, logkey.Error, err)
			if terr := f.Truncate(off); terr != nil {
				f.Close()
				return nil, fmt.Errorf("truncate %s: %w", path, terr)
			}
			break
		}
		g.entries = append(g.entries, entry{seq: r.seq, kind: r.kind, off: off, size: int64(n)})
		prev = r.seq
		off += int64(n)
	}
	g.size = off

	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync %s: %w", path, err)
	}
	return g, nil
}

// Append assigns the next sequence number to payload, writes it, and returns once it is on
// stable storage. When the message does not fit, Append first drops acknowledged records
// and then the oldest heartbeats; when that is not enough it returns ErrFull and writes
// nothing. A message whose Append returned without error is never lost, except a heartbeat
// dropped later for room.
func (s *Spool) Append(kind Kind, payload []byte) (uint64, error) {
	if !kind.valid() {
		return 0, fmt.Errorf("spool append: invalid kind %d", kind)
	}
	size := int64(headerSize + len(payload))
	if len(payload) > MaxPayload || size > s.max {
		return 0, ErrTooLarge
	}

	seq, err := s.write(kind, payload, size)
	if err != nil {
		return 0, err
	}
	if err := s.syncTo(seq); err != nil {
		return 0, fmt.Errorf("spool append: %w", err)
	}
	return seq, nil
}

// write appends one record to the active segment, making room first if needed.
func (s *Spool) write(kind Kind, payload []byte, size int64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	switch {
	case s.closed:
		return 0, ErrClosed
	case s.broken != nil:
		return 0, s.broken
	}
	if s.bytes+size > s.max {
		if err := s.makeRoomLocked(size); err != nil {
			return 0, err
		}
	}
	g, err := s.activeLocked(size)
	if err != nil {
		return 0, fmt.Errorf("spool append: %w", err)
	}

	seq := s.nextSeq
	buf := encodeRecord(make([]byte, 0, size), record{seq: seq, kind: kind, payload: payload})
	if _, err := g.f.Write(buf); err != nil {
		if terr := g.f.Truncate(g.size); terr != nil {
			s.broken = fmt.Errorf("spool: unrecoverable write error: %w", terr)
		}
		return 0, fmt.Errorf("spool append: %w", err)
	}

	g.entries = append(g.entries, entry{seq: seq, kind: kind, off: g.size, size: size})
	g.size += size
	s.bytes += size
	s.count++
	s.nextSeq++
	s.written = seq
	return seq, nil
}

// activeLocked returns the segment to append a record of size bytes to, starting a new one
// when there is none or the last one is full. A full segment is synced before it is left.
func (s *Spool) activeLocked(size int64) (*segment, error) {
	if n := len(s.segs); n > 0 {
		g := s.segs[n-1]
		if g.size == 0 || g.size+size <= s.segMax {
			return g, nil
		}
		if err := g.f.Sync(); err != nil {
			return nil, fmt.Errorf("sync %s: %w", g.path, err)
		}
		s.durable = max(s.durable, s.written)
	}

	path := filepath.Join(s.dir, fmt.Sprintf("%020d.seg", s.nextSeq))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return nil, err
	}
	g := &segment{path: path, f: f}
	s.segs = append(s.segs, g)
	return g, nil
}

// syncTo makes every record up to seq durable. Concurrent callers share one fsync: whoever
// holds syncMu syncs everything written so far.
func (s *Spool) syncTo(seq uint64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()

	s.mu.Lock()
	if s.durable >= seq {
		s.mu.Unlock()
		return nil
	}
	target := s.written
	if len(s.segs) == 0 { // everything was acknowledged meanwhile
		s.durable = target
		s.mu.Unlock()
		return nil
	}
	f := s.segs[len(s.segs)-1].f
	s.mu.Unlock()

	// Earlier segments were synced when they were left. A segment closed meanwhile was
	// either acknowledged and deleted or rewritten and synced, so ErrClosed is success.
	if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}

	s.mu.Lock()
	s.durable = max(s.durable, target)
	s.mu.Unlock()

	select {
	case s.appends <- struct{}{}:
	default:
	}
	return nil
}

// Appended returns a channel that receives a value after Append has made new messages
// visible to Pending. Values coalesce: one receive may stand for many appends. Meant for a
// single consumer (the sender).
func (s *Spool) Appended() <-chan struct{} { return s.appends }

// Pending returns up to limit unacknowledged, durable messages with a seq above after, in
// seq order. It returns an empty slice when there are none.
func (s *Spool) Pending(after uint64, limit int) ([]Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.closed {
		return nil, ErrClosed
	}
	after = max(after, s.acked)

	var out []Message
	for _, g := range s.segs {
		if len(g.entries) == 0 || g.lastSeq() <= after {
			continue
		}
		i := sort.Search(len(g.entries), func(i int) bool { return g.entries[i].seq > after })
		for _, e := range g.entries[i:] {
			if len(out) >= limit || e.seq > s.durable {
				return out, nil
			}
			m, err := readMessage(g, e)
			if err != nil {
				return out, fmt.Errorf("spool pending: %w", err)
			}
			out = append(out, m)
		}
	}
	return out, nil
}

func readMessage(g *segment, e entry) (Message, error) {
	buf := make([]byte, e.size)
	if _, err := g.f.ReadAt(buf, e.off); err != nil {
		return Message{}, fmt.Errorf("read %s at %d: %w", g.path, e.off, err)
	}
	r, _, err := decodeRecord(buf)
	if err != nil {
		return Message{}, fmt.Errorf("read %s at %d: %w", g.path, e.off, err)
	}
	return Message{Seq: r.seq, Kind: r.kind, Payload: r.payload}, nil
}

// Ack records that the controller has durably stored every message up to and including
// upTo, and deletes segments that hold nothing newer. Acks at or below the watermark are
// ignored. An ack beyond the last assigned seq (a controller that knows more than this spool,
// for example after the state directory was restored from a backup) moves the next seq past
// it, so that new messages are not taken for duplicates.
func (s *Spool) Ack(upTo uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.closed {
		return ErrClosed
	}
	if upTo <= s.acked {
		return nil
	}
	if upTo >= s.nextSeq {
		s.log.Warn("spool acknowledged beyond its last message; skipping ahead",
			logkey.Seq, upTo, "next_seq", s.nextSeq)
		s.nextSeq = upTo + 1
	}
	s.acked = upTo
	s.fullLogged = false

	// The watermark goes to disk before any segment is deleted, so a crash in between
	// can neither resurrect deleted messages nor lose the next seq.
	if err := s.writeMetaLocked(); err != nil {
		return fmt.Errorf("spool ack: %w", err)
	}

	for len(s.segs) > 0 && len(s.segs[0].entries) > 0 && s.segs[0].lastSeq() <= s.acked {
		if err := s.dropSegmentLocked(0); err != nil {
			return fmt.Errorf("spool ack: %w", err)
		}
	}
	return nil
}

// dropSegmentLocked closes and deletes s.segs[i].
func (s *Spool) dropSegmentLocked(i int) error {
	g := s.segs[i]
	s.segs = append(s.segs[:i], s.segs[i+1:]...)
	s.count -= uint64(len(g.entries))
	s.bytes -= g.size
	return removeSegment(g)
}

func removeSegment(g *segment) error {
	g.f.Close()
	if err := os.Remove(g.path); err != nil {
		return fmt.Errorf("remove %s: %w", g.path, err)
	}
	return nil
}

// State returns a snapshot of the spool's counters.
func (s *Spool) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()

	st := State{
		NextSeq:           s.nextSeq,
		Bytes:             uint64(s.bytes),
		DroppedHeartbeats: s.dropped,
		Messages:          s.count,
	}
	if len(s.segs) == 0 {
		return st
	}
	first := s.segs[0].entries
	i := sort.Search(len(first), func(i int) bool { return first[i].seq > s.acked })
	st.Messages -= uint64(i)
	if st.Messages > 0 {
		for _, g := range s.segs {
			if len(g.entries) > 0 && g.lastSeq() > s.acked {
				j := sort.Search(len(g.entries), func(j int) bool {
					return g.entries[j].seq > s.acked
				})
				st.OldestSeq = g.entries[j].seq
				break
			}
		}
	}
	return st
}

// Close syncs and closes the spool's files. It is idempotent; Append, Pending and Ack
// return ErrClosed afterwards.
func (s *Spool) Close() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.closed {
		return nil
	}
	s.closed = true

	var err error
	if n := len(s.segs); n > 0 {
		if serr := s.segs[n-1].f.Sync(); serr != nil {
			err = fmt.Errorf("spool close: %w", serr)
		}
	}
	s.durable = s.written
	s.closeFiles()
	return err
}

func (s *Spool) closeFiles() {
	for _, g := range s.segs {
		g.f.Close()
	}
}

// syncDir makes a directory's entries (created, renamed, removed files) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
