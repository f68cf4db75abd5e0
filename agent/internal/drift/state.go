package drift

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"time"

	"github.com/wardsec/ward/agent/internal/checks"
	"github.com/wardsec/ward/agent/internal/state"
	"github.com/wardsec/ward/pkg/baseline"
	"github.com/wardsec/ward/pkg/pki"
)

// StateFile is the usual name of Config.StatePath inside the state directory.
const StateFile = state.DriftFile

// errDamaged marks a state file that cannot be decoded. It costs only the since times:
// the loop starts over with a full snapshot.
var errDamaged = errors.New("drift: damaged state file")

// fileState is the persisted form: the baseline last evaluated, when the last full
// snapshot went out, and each check's state with the time it began.
type fileState struct {
	BaselineID      string                `json:"baseline_id"`
	BaselineVersion string                `json:"baseline_version"`
	LastSnapshot    time.Time             `json:"last_snapshot"`
	Checks          map[string]checkState `json:"checks"`
}

type checkState struct {
	State string    `json:"state"` // checks.State's name
	Since time.Time `json:"since"`
}

// loadState reads path; a missing file is an empty state (the first run).
func loadState(path string) (*fileState, error) {
	st := &fileState{Checks: map[string]checkState{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("drift: %w", err)
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errDamaged, path, err)
	}
	if st.Checks == nil {
		st.Checks = map[string]checkState{}
	}
	return st, nil
}

func (s *fileState) save(path string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return pki.WriteFile(path, append(data, '\n'), pki.PublicMode)
}

func (s *fileState) clone() *fileState {
	c := *s
	c.Checks = maps.Clone(s.Checks)
	return &c
}

// snapshotDue reports whether the next report must hold every check, and why.
func (s *fileState) snapshotDue(b *baseline.Baseline, now time.Time,
	every time.Duration) (bool, string) {
	switch {
	case s.LastSnapshot.IsZero():
		return true, "first run"
	case s.BaselineID != b.ID || s.BaselineVersion != b.Version:
		return true, "baseline changed"
	case now.Sub(s.LastSnapshot) >= every:
		return true, "daily"
	}
	return false, ""
}

// apply records results evaluated at now and returns the ids whose state changed (a
// check seen for the first time counts as changed). With whole set, results cover the
// whole baseline b: checks no longer in it are forgotten and the baseline is recorded.
func (s *fileState) apply(b *baseline.Baseline, results []checks.Result, now time.Time,
	whole bool) map[string]bool {
	changed := map[string]bool{}
	seen := make(map[string]bool, len(results))
	for _, r := range results {
		seen[r.CheckID] = true
		name := r.State.String()
		if old, ok := s.Checks[r.CheckID]; ok && old.State == name {
			continue
		}
		s.Checks[r.CheckID] = checkState{State: name, Since: now}
		changed[r.CheckID] = true
	}
	if whole {
		maps.DeleteFunc(s.Checks, func(id string, _ checkState) bool { return !seen[id] })
		s.BaselineID, s.BaselineVersion = b.ID, b.Version
	}
	return changed
}
