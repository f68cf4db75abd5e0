package spool

import (
	"fmt"
	"os"

	"github.com/wardsec/ward/pkg/logkey"
)

// makeRoomLocked frees space for a record of need bytes by rewriting the oldest segments
// without their acknowledged records and, oldest first, without as many heartbeats as it
// takes. It returns ErrFull when only unacknowledged non-heartbeats are left.
func (s *Spool) makeRoomLocked(need int64) error {
	// The next seq goes to disk first: a dropped heartbeat may have been the newest record,
	// and its seq must never be handed out again.
	if err := s.writeMetaLocked(); err != nil {
		return fmt.Errorf("spool append: %w", err)
	}

	// Free a sixteenth of the spool beyond need, so a spool that stays full (an agent
	// offline for weeks) rewrites a segment now and then instead of at every heartbeat.
	goal := s.max - s.max/16 - need
	dropped := 0
	for i := 0; i < len(s.segs) && s.bytes > goal; {
		g := s.segs[i]
		keep, freed, hb := s.plan(g, s.bytes-goal)
		if freed == 0 {
			i++
			continue
		}
		if len(keep) == 0 {
			if err := s.dropSegmentLocked(i); err != nil {
				return fmt.Errorf("spool append: %w", err)
			}
		} else {
			if err := s.rewriteLocked(g, keep); err != nil {
				return fmt.Errorf("spool append: %w", err)
			}
			i++
		}
		s.dropped += uint64(hb)
		dropped += hb
	}

	switch {
	case dropped > 0 && !s.fullLogged:
		s.fullLogged = true
		s.log.Warn("spool full; dropping oldest heartbeats until the controller acknowledges",
			logkey.Count, dropped, "dropped_total", s.dropped)
	case dropped > 0:
		s.log.Debug("spool full; dropped oldest heartbeats",
			logkey.Count, dropped, "dropped_total", s.dropped)
	}
	if s.bytes+need > s.max {
		return ErrFull
	}
	return nil
}

// plan chooses which records of g to keep when excess bytes must go: every acknowledged
// record goes, then heartbeats from the oldest on until excess is covered. It returns the
// entries to keep, the bytes freed and the number of heartbeats dropped.
func (s *Spool) plan(g *segment, excess int64) (keep []entry, freed int64, heartbeats int) {
	for _, e := range g.entries {
		switch {
		case e.seq <= s.acked:
			freed += e.size
		case e.kind == KindHeartbeat && freed < excess:
			freed += e.size
			heartbeats++
		default:
			keep = append(keep, e)
		}
	}
	return keep, freed, heartbeats
}

// rewriteLocked replaces g's file with one holding only keep: written to a temporary file,
// synced and renamed over the original, so a crash leaves one or the other.
func (s *Spool) rewriteLocked(g *segment, keep []entry) error {
	tmp := g.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // no-op after the rename

	entries := make([]entry, 0, len(keep))
	var off int64
	for _, e := range keep {
		buf := make([]byte, e.size)
		if _, err := g.f.ReadAt(buf, e.off); err != nil {
			f.Close()
			return fmt.Errorf("read %s: %w", g.path, err)
		}
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", tmp, err)
		}
		entries = append(entries, entry{seq: e.seq, kind: e.kind, off: off, size: e.size})
		off += e.size
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}

	if err := os.Rename(tmp, g.path); err != nil {
		return fmt.Errorf("replace %s: %w", g.path, err)
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	return s.reopenLocked(g, entries, off)
}

// reopenLocked points g at its rewritten file.
func (s *Spool) reopenLocked(g *segment, entries []entry, size int64) error {
	f, err := os.OpenFile(g.path, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		s.broken = fmt.Errorf("spool: reopen rewritten segment: %w", err)
		return s.broken
	}
	g.f.Close()

	s.count -= uint64(len(g.entries) - len(entries))
	s.bytes -= g.size - size
	g.f, g.entries, g.size = f, entries, size

	if g == s.segs[len(s.segs)-1] { // the rewrite synced the active segment's records
		s.durable = max(s.durable, s.written)
	}
	return nil
}
