package site

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `{
  "subnets": ["10.20.0.0/24", "10.21.0.0/28"],
  "passive_subnets": ["10.30.0.0/24", "10.20.0.192/26"],
  "exclude": ["10.20.0.7", "10.21.0.8/30"],
  "snmp": [
    {"version": "v3", "user": "ward", "auth_protocol": "SHA",
     "auth_passphrase": "authsecret1", "priv_protocol": "AES", "priv_passphrase": "privsecret1"},
    {"version": "v2c", "community": "c0mmunity"}
  ],
  "schedule": {"interval": "6h"},
  "probe_rate": 100
}`

func TestParseGood(t *testing.T) {
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(c.Schedule.Interval); got != 6*time.Hour {
		t.Errorf("interval = %s", got)
	}
	if len(c.ScanPrefixes()) != 2 || len(c.PassivePrefixes()) != 2 || len(c.ExcludedPrefixes()) != 2 {
		t.Errorf("prefixes: %v %v %v", c.ScanPrefixes(), c.PassivePrefixes(), c.ExcludedPrefixes())
	}

	tests := []struct {
		addr      string
		mayProbe  bool
		excluded  bool
		untouched bool
	}{
		{"10.20.0.1", true, false, false},
		{"10.20.0.7", false, true, true},     // excluded address
		{"10.20.0.200", false, false, true},  // passive overlap inside a scanned subnet
		{"10.30.0.5", false, false, true},    // passive subnet
		{"10.21.0.9", false, true, true},     // excluded range
		{"10.21.0.3", true, false, false},    // second scanned subnet
		{"192.168.1.1", false, false, false}, // outside every subnet
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		if got := c.MayProbe(a); got != tt.mayProbe {
			t.Errorf("MayProbe(%s) = %v, want %v", a, got, tt.mayProbe)
		}
		if got := c.Excluded(a); got != tt.excluded {
			t.Errorf("Excluded(%s) = %v, want %v", a, got, tt.excluded)
		}
		if got := c.Untouchable(a); got != tt.untouched {
			t.Errorf("Untouchable(%s) = %v, want %v", a, got, tt.untouched)
		}
	}

	w := c.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "v2c") {
		t.Errorf("warnings = %q, want one about v2c", w)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(`{"passive_subnets": ["10.0.0.0/24"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.ProbeRate != DefaultProbeRate || time.Duration(c.Schedule.Interval) != DefaultInterval {
		t.Errorf("defaults: rate %d interval %s", c.ProbeRate, time.Duration(c.Schedule.Interval))
	}
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"empty", `{}`, "no subnets"},
		{"unknown field", `{"subnets":["10.0.0.0/24"],"pasive_subnets":[]}`, "unknown field"},
		{"not cidr", `{"subnets":["10.0.0.1"]}`, "not a CIDR"},
		{"host bits", `{"subnets":["10.0.0.1/24"]}`, "did you mean 10.0.0.0/24"},
		{"too large", `{"subnets":["10.0.0.0/8"]}`, "too large"},
		{"too many hosts", `{"subnets":["10.0.0.0/16","10.1.0.0/24"]}`, "at most 65536"},
		{"bad exclude", `{"subnets":["10.0.0.0/24"],"exclude":["ten"]}`, "neither an address"},
		{"bad interval", `{"subnets":["10.0.0.0/24"],"schedule":{"interval":"10s"}}`, "at least 1m"},
		{"interval not string", `{"subnets":["10.0.0.0/24"],"schedule":{"interval":5}}`, "want a string"},
		{"rate", `{"subnets":["10.0.0.0/24"],"probe_rate":100000}`, "probe_rate 100000"},
		{"ports", `{"subnets":["10.0.0.0/24"],"ports":"22;rm"}`, "ports"},
		{"snmp version", `{"subnets":["10.0.0.0/24"],"snmp":[{"version":"v1"}]}`, "want v3 or v2c"},
		{"v2c no community", `{"subnets":["10.0.0.0/24"],"snmp":[{"version":"v2c"}]}`, "community"},
		{"v3 noauth", `{"subnets":["10.0.0.0/24"],"snmp":[{"version":"v3","user":"u"}]}`,
			"noAuthNoPriv is not allowed"},
		{"v3 short", `{"subnets":["10.0.0.0/24"],"snmp":[{"version":"v3","user":"u",` +
			`"auth_protocol":"SHA","auth_passphrase":"sekrit"}]}`, "at least 8"},
		{"v3 priv", `{"subnets":["10.0.0.0/24"],"snmp":[{"version":"v3","user":"u",` +
			`"auth_protocol":"SHA","auth_passphrase":"longenough","priv_protocol":"ROT13",` +
			`"priv_passphrase":"longenough"}]}`, "priv_protocol \"ROT13\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "sekrit") || strings.Contains(err.Error(), "longenough") {
				t.Errorf("error repeats a secret: %v", err)
			}
		})
	}
}

func TestAuthNoPrivWarns(t *testing.T) {
	c, err := Parse([]byte(`{"subnets":["10.0.0.0/24"],"snmp":[{"version":"v3","user":"u",` +
		`"auth_protocol":"SHA256","auth_passphrase":"longenough"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "authPriv") {
		t.Errorf("warnings = %q", w)
	}
	if lvl := c.SNMP[0].Level(); lvl != "authNoPriv" {
		t.Errorf("level = %s", lvl)
	}
}

func TestSecretsRedacted(t *testing.T) {
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	log := slog.New(slog.NewJSONHandler(&b, nil))
	log.Info("creds", "v3", c.SNMP[0], "v2c", c.SNMP[1])
	out := b.String() + fmt.Sprint(c.SNMP) + fmt.Sprintf("%v %s", c.SNMP[0], c.SNMP[1])
	for _, secret := range []string{"authsecret1", "privsecret1", "c0mmunity"} {
		if strings.Contains(out, secret) {
			t.Errorf("secret %q printed: %s", secret, out)
		}
	}
	r := c.SNMP[0].Redacted()
	if r.AuthPassphrase != "[redacted]" || r.PrivPassphrase != "[redacted]" || r.Community != "" {
		t.Errorf("redacted = %+v", r)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "collector.json")
	if err := os.WriteFile(p, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(filepath.Join(dir, "absent.json")); err == nil {
		t.Error("absent file loaded")
	}
}
