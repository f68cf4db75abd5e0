package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpusDir is the classifier's labelled corpus.
const corpusDir = "../../../pkg/classify/testdata/nmap"

// runOffline runs wardctl with an empty environment: no controller, no credentials.
func runOffline(args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut, func(string) string { return "" })
	return out.String(), errOut.String(), code
}

func TestClassifyOffline(t *testing.T) {
	files := []string{filepath.Join(corpusDir, "clinical.xml"),
		filepath.Join(corpusDir, "network.xml")}
	out, errOut, code := runOffline("classify", "--nmap-xml", files[0], "--nmap-xml", files[1])
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}

	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 26+26 {
		t.Errorf("%d lines, want 52 (one per host)", len(lines))
	}
	byIP := map[string]map[string]any{}
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		for _, key := range []string{"ip", "mac", "vendor", "type", "tier", "should_monitor",
			"strategy", "enrollment", "confidence", "reasons", "controls"} {
			if _, ok := m[key]; !ok {
				t.Fatalf("line %q lacks %q", line, key)
			}
		}
		byIP[m["ip"].(string)] = m
	}

	ct := byIP["192.168.50.40"]
	if ct["type"] != "dicom_modality" || ct["tier"] != 3.0 || ct["strategy"] != "passive" ||
		ct["vendor"] != "GE Healthcare" || ct["enrollment"] != "manual" {
		t.Errorf("GE modality: %v", ct)
	}
	if reasons := ct["reasons"].([]any); len(reasons) == 0 ||
		!strings.Contains(strings.Join(toStrings(reasons), ";"), "44:4B:5D") {
		t.Errorf("GE modality reasons: %v", reasons)
	}
	if fw := byIP["10.0.0.253"]; fw["type"] != "firewall" || fw["strategy"] != "snmp" {
		t.Errorf("FortiGate: %v", fw)
	}
}

func toStrings(v []any) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i], _ = x.(string)
	}
	return out
}

func TestClassifyErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "broken.xml")
	doc := "<?xml version=\"1.0\"?>\n<nmaprun>\n<host>\n<address addr=\"10.0.0.1\"\n</nmaprun>\n"
	if err := os.WriteFile(bad, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"classify"}, "at least one --nmap-xml"},
		{[]string{"classify", "--nmap-xml", bad}, bad + ": nmap xml: line 5:"},
		{[]string{"classify", "--nmap-xml", filepath.Join(t.TempDir(), "absent.xml")},
			"no such file"},
	}
	for _, tt := range tests {
		out, errOut, code := runOffline(tt.args...)
		if code == 0 || out != "" || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, out %q, err %q; want failure naming %q", tt.args, code,
				out, errOut, tt.want)
		}
	}
}
