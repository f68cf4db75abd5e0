package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/wardsec/ward/agent/internal/discovery"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/pki"
	"github.com/wardsec/ward/pkg/site"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// applySite writes a verified site configuration from the controller to path (the
// collector's collector.json, mode 0600: it holds SNMP secrets) unless the file already
// holds exactly it. A configuration pkg/site refuses is not written. changed reports
// whether the file was replaced.
func applySite(path string, u *wardv1.SiteConfigUpdate) (changed bool, err error) {
	doc := u.GetConfigJson()
	if _, err := site.Parse(doc); err != nil {
		return false, fmt.Errorf("site configuration from the controller: %w", err)
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("site configuration: %w", err)
	}
	if err == nil && bytes.Equal(old, doc) {
		return false, nil
	}
	if err := pki.WriteFile(path, doc, pki.PrivateMode); err != nil {
		return false, fmt.Errorf("site configuration: %w", err)
	}
	return true, nil
}

// siteHook returns the client's SiteConfigs hook of a collector: it writes each new
// configuration to path and has the collector (*col, set before the client runs) read
// it and scan again, unless only the poll targets changed (the collector's polls read
// them at their next round; a new scan is not needed for them).
func siteHook(path string, col **discovery.Collector, log *slog.Logger) func(
	*wardv1.SiteConfigUpdate) {
	return func(u *wardv1.SiteConfigUpdate) {
		before, _ := site.Load(path) // nil when there is none yet or it is unusable
		changed, err := applySite(path, u)
		if err != nil {
			log.Warn("site configuration refused", logkey.Error, err)
			return
		}
		if !changed {
			log.Info("site configuration unchanged", logkey.Path, path)
			return
		}
		log.Info("site configuration written", logkey.Path, path)
		if onlyTargets(before, u.GetConfigJson()) {
			log.Info("only the poll targets changed; no new scan", logkey.Path, path)
			return
		}
		if *col != nil {
			(*col).Reload()
		}
	}
}

// onlyTargets reports whether doc differs from before in its poll targets only.
func onlyTargets(before *site.Config, doc []byte) bool {
	after, err := site.Parse(doc)
	if before == nil || err != nil {
		return false
	}
	a, b := before.WithoutTargets(), after.WithoutTargets()
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}
