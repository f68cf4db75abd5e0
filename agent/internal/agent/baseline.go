package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/wardsec/ward/agent/internal/state"
	"github.com/wardsec/ward/pkg/baseline"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// BaselineFile is the baseline in force, in the state directory: the last update the
// controller sent that verified and parsed. Without it the agent applies the shipped
// hipaa-v1.
const BaselineFile = state.BaselineFile

// baselines holds the baseline in force. Current is safe for concurrent use; Apply is
// called from one goroutine (the stream's receive loop).
type baselines struct {
	path string
	log  *slog.Logger
	cur  atomic.Pointer[baseline.Baseline]
}

// loadBaselines reads the persisted baseline, or falls back to the shipped one when there
// is none or it no longer parses (said in the log).
func loadBaselines(dir state.Dir, log *slog.Logger) (*baselines, error) {
	bs := &baselines{path: filepath.Join(string(dir), BaselineFile), log: log}
	data, err := os.ReadFile(bs.path)
	switch {
	case err == nil:
		b, perr := baseline.Parse(bs.path, data, baseline.Options{})
		if perr == nil {
			bs.cur.Store(b)
			return bs, nil
		}
		log.Error("stored baseline does not parse; applying the shipped one until the "+
			"controller sends another", logkey.Path, bs.path, logkey.Error, perr)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("agent: %w", err)
	}

	b, err := baseline.Shipped()
	if err != nil {
		return nil, fmt.Errorf("agent: shipped baseline: %w", err)
	}
	bs.cur.Store(b)
	return bs, nil
}

// Current returns the baseline in force; never nil.
func (bs *baselines) Current() *baseline.Baseline { return bs.cur.Load() }

// Version returns the version of the baseline in force.
func (bs *baselines) Version() string { return bs.Current().Version }

// Apply makes a verified update the baseline in force and persists it. An update that
// does not parse, or whose document does not match its id and version, is refused and
// the current baseline stays. It reports whether the baseline changed.
func (bs *baselines) Apply(spec *wardv1.BaselineSpec) (bool, error) {
	file := spec.GetBaselineId() + ".yaml"
	b, err := baseline.Parse(file, spec.GetDocument(), baseline.Options{})
	if err != nil {
		return false, fmt.Errorf("baseline update: %w", err)
	}
	if b.ID != spec.GetBaselineId() || b.Version != spec.GetVersion() {
		return false, fmt.Errorf("baseline update: document is %s %s, update names %s %s",
			b.ID, b.Version, spec.GetBaselineId(), spec.GetVersion())
	}
	cur := bs.Current()
	if cur.ID == b.ID && cur.Version == b.Version {
		return false, nil
	}

	if err := pki.WriteFile(bs.path, spec.GetDocument(), pki.PublicMode); err != nil {
		return false, fmt.Errorf("baseline update: %w", err)
	}
	bs.cur.Store(b)
	return true, nil
}
