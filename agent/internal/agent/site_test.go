package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wardsec/ward/agent/internal/discovery"
	"github.com/wardsec/ward/agent/internal/logtest"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

func TestApplySite(t *testing.T) {
	path := filepath.Join(t.TempDir(), discovery.ConfigFile)
	good := []byte(`{"subnets":["10.9.0.0/24"],"passive_subnets":["10.9.1.0/24"],` +
		`"snmp":[{"version":"v2c","community":"clinic-secret"}]}`)
	update := func(doc []byte) *wardv1.SiteConfigUpdate {
		return &wardv1.SiteConfigUpdate{Tenant: "t1", ConfigJson: doc}
	}

	changed, err := applySite(path, update(good))
	if err != nil || !changed {
		t.Fatalf("first configuration: changed %v, %v", changed, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("collector.json %v: %v (it holds SNMP secrets: 0600)", fi.Mode(), err)
	}
	if changed, err := applySite(path, update(good)); err != nil || changed {
		t.Fatalf("same configuration again: changed %v, %v", changed, err)
	}

	// Invalid configurations are refused and leave the file as it was.
	for _, bad := range []string{`{"subnets":["10.9.0.0/33"]}`, `{"subnetz":["10.9.0.0/24"]}`,
		`not json`} {
		if _, err := applySite(path, update([]byte(bad))); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	if got, _ := os.ReadFile(path); string(got) != string(good) {
		t.Fatalf("file changed by a refused configuration: %s", got)
	}

	// Through the hook, without a collector yet: written, nothing else happens.
	var col *discovery.Collector
	next := []byte(`{"subnets":["10.9.2.0/24"]}`)
	siteHook(path, &col, logtest.New(t))(update(next))
	if got, _ := os.ReadFile(path); string(got) != string(next) {
		t.Fatalf("hook did not write the new configuration: %s", got)
	}
}
