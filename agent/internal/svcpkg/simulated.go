package svcpkg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/wardsec/ward/agent/internal/hostfs"
)

// SimStateFile is the host path of the simulated provider's state.
const SimStateFile = "/var/lib/ward-sim/state.json"

// SimState is the content of SimStateFile. Tests and the demo write it to prepare a tree.
type SimState struct {
	Services map[string]SimService `json:"services"`
	// Packages maps a package name to its installed version.
	Packages map[string]string `json:"packages"`
	// SecurityUpdates maps a package to the version a security update would install.
	SecurityUpdates map[string]string `json:"security_updates,omitempty"`
}

// SimService is one simulated unit.
type SimService struct {
	Active   bool `json:"active"`
	Enabled  bool `json:"enabled"`
	Restarts int  `json:"restarts"` // restarts and reloads so far
}

// simulated keeps service and package state in SimStateFile.
type simulated struct {
	fs     *hostfs.FS
	family Family
	log    *slog.Logger

	mu sync.Mutex // serialises read-modify-write of the state file
}

var _ Provider = (*simulated)(nil)

func (s *simulated) Simulated() bool { return true }

// LoadSim reads the simulated state under fsys; a missing file is an empty state.
func LoadSim(fsys *hostfs.FS) (SimState, error) {
	st := SimState{Services: map[string]SimService{}, Packages: map[string]string{}}
	data, err := fsys.ReadFile(SimStateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("simulated state %s: %w", SimStateFile, err)
	}
	if st.Services == nil {
		st.Services = map[string]SimService{}
	}
	if st.Packages == nil {
		st.Packages = map[string]string{}
	}
	return st, nil
}

// SaveSim writes st as the simulated state under fsys.
func SaveSim(fsys *hostfs.FS, st SimState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := fsys.MkdirAll("/var/lib/ward-sim", 0o755); err != nil {
		return err
	}
	return fsys.WriteFile(SimStateFile, data, hostfs.WriteOptions{Mode: 0o644, UID: -1, GID: -1})
}

func (s *simulated) Service(_ context.Context, name string) (Service, error) {
	st, err := LoadSim(s.fs)
	if err != nil {
		return Service{}, err
	}
	u, ok := st.Services[unit(name)]
	return Service{Exists: ok, Active: u.Active, Enabled: u.Enabled}, nil
}

func (s *simulated) Control(_ context.Context, op Op, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	st, err := LoadSim(s.fs)
	if err != nil {
		return err
	}
	u, ok := st.Services[unit(name)]
	if !ok {
		return fmt.Errorf("simulated: %s %s: unit not found", op, name)
	}
	switch op {
	case OpRestart:
		u.Active, u.Restarts = true, u.Restarts+1
	case OpReload:
		if !u.Active {
			return fmt.Errorf("simulated: reload %s: unit is not active", name)
		}
		u.Restarts++
	case OpEnable:
		u.Active, u.Enabled = true, true
	case OpDisable:
		u.Active, u.Enabled = false, false
	default:
		return fmt.Errorf("simulated: unknown operation %q", op)
	}
	st.Services[unit(name)] = u
	if err := SaveSim(s.fs, st); err != nil {
		return err
	}
	s.log.Info("service operation (simulated)", "op", string(op), "service", name)
	return nil
}

func (s *simulated) Package(_ context.Context, name string) (Package, error) {
	st, err := LoadSim(s.fs)
	if err != nil {
		return Package{}, err
	}
	v, ok := st.Packages[name]
	return Package{Installed: ok, Version: v}, nil
}

func (s *simulated) ApplySecurityUpdates(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	st, err := LoadSim(s.fs)
	if err != nil {
		return "", err
	}
	var done []string
	for p, v := range st.SecurityUpdates {
		st.Packages[p] = v
		done = append(done, p+" "+v)
	}
	sort.Strings(done)
	st.SecurityUpdates = nil
	if err := SaveSim(s.fs, st); err != nil {
		return "", err
	}
	s.log.Info("security updates applied (simulated)", "count", len(done))
	return fmt.Sprintf("simulated: %d security updates installed: %s", len(done),
		strings.Join(done, ", ")), nil
}

func (s *simulated) CompareVersions(a, b string) int { return CompareDebian(a, b) }
