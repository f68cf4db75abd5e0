package spool

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/wardsec/ward/pkg/pki"
)

const metaFile = "state.json"

// meta is the spool's small state file, replaced atomically.
type meta struct {
	Acked             uint64 `json:"acked"`    // acknowledgement watermark
	NextSeq           uint64 `json:"next_seq"` // a floor for the next seq
	DroppedHeartbeats uint64 `json:"dropped_heartbeats"`
}

func readMeta(dir string) (meta, error) {
	var m meta
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("read spool state: %w", err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("read spool state %s: %w", filepath.Join(dir, metaFile), err)
	}
	return m, nil
}

// writeMetaLocked replaces the state file and makes the rename durable.
func (s *Spool) writeMetaLocked() error {
	data, err := json.Marshal(meta{
		Acked:             s.acked,
		NextSeq:           s.nextSeq,
		DroppedHeartbeats: s.dropped,
	})
	if err != nil {
		return fmt.Errorf("encode spool state: %w", err)
	}
	if err := pki.WriteFile(filepath.Join(s.dir, metaFile), data, pki.PrivateMode); err != nil {
		return err
	}
	return syncDir(s.dir)
}
