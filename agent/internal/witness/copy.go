package witness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// CopyFile is the clinic's copy of the checkpoints, relative to the state directory: one
// JSON object (Entry) per line, appended and synced before the witness answers.
const CopyFile = "evidence/checkpoints.jsonl"

// Entry is one checkpoint in the clinic's copy: accepted and countersigned
// (WitnessSignature set) or refused (Refused says why).
type Entry struct {
	Tenant string    `json:"tenant"`
	Size   uint64    `json:"size"`
	Head   string    `json:"head"` // chain hash of record Size, 64 hex digits
	Time   time.Time `json:"time"` // when the controller signed it
	// ControllerSignature is the evidence key's signature over the checkpoint text, as
	// the controller sent it (checked by auditors against the bundle's evidence key).
	ControllerSignature []byte `json:"controller_signature,omitempty"`
	// WitnessSignature is this agent's countersignature over the same text.
	WitnessSignature []byte    `json:"witness_signature,omitempty"`
	Received         time.Time `json:"received"` // when this witness handled it
	Refused          string    `json:"refused,omitempty"`
}

// Copy is the append-only file of Entries. Its methods are safe for concurrent use.
type Copy struct {
	path string
	mu   sync.Mutex
}

// OpenCopy returns the copy under the state directory dir; the file is created by the
// first Append.
func OpenCopy(dir string) (*Copy, error) {
	if dir == "" {
		return nil, errors.New("witness copy: no state directory")
	}
	return &Copy{path: filepath.Join(dir, CopyFile)}, nil
}

// Path returns the copy's file name.
func (c *Copy) Path() string { return c.path }

// Entries returns the entries in the order they were kept. A last line cut short by a
// crash (no newline) is not an entry and is ignored; any other unreadable line is an error
// naming it.
func (c *Copy) Entries() ([]Entry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()

	data, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("witness copy: %w", err)
	}
	var out []Entry
	r := bufio.NewReader(bytes.NewReader(data))
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return out, nil // a partial last line is dropped
		}
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("witness copy: %s line %d: %w", c.path, n, err)
		}
		out = append(out, e)
	}
}

// Append adds e at the end of the copy and syncs the file (and, when it creates it, its
// directory) before returning. A partial line left by a crash is cut off first.
func (c *Copy) Append(e Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()

	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("witness copy: %w", err)
	}
	dir := filepath.Dir(c.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("witness copy: %w", err)
	}
	f, err := os.OpenFile(c.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("witness copy: %w", err)
	}
	defer f.Close()

	end, err := completeEnd(f)
	if err != nil {
		return fmt.Errorf("witness copy: %w", err)
	}
	if _, err := f.WriteAt(append(line, '\n'), end); err != nil {
		return fmt.Errorf("witness copy: %w", err)
	}
	if err := f.Truncate(end + int64(len(line)) + 1); err != nil {
		return fmt.Errorf("witness copy: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("witness copy: %w", err)
	}
	if end == 0 {
		return syncDir(dir)
	}
	return nil
}

// completeEnd returns the offset just after the last newline of f (0 when it has none).
func completeEnd(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	buf := make([]byte, 4096)
	for end := size; end > 0; {
		n := min(int64(len(buf)), end)
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return end - n + int64(i) + 1, nil
		}
		end -= n
	}
	return 0, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("witness copy: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("witness copy: %w", err)
	}
	return nil
}
