package classify_test

import (
	"strings"
	"testing"

	"github.com/wardsec/ward/pkg/classify"
)

func TestVendorsLookup(t *testing.T) {
	v := classify.FallbackVendors()
	tests := []struct {
		mac, want string
	}{
		{"44:4b:5d:01:02:03", "GE Healthcare"},
		{"44-4B-5D-01-02-03", "GE Healthcare"},
		{"444b.5d01.0203", "GE Healthcare"},
		{"00:09:0F:aa:bb:cc", "Fortinet"},
		{"zz:zz:zz:00:00:00", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, _ := v.Lookup(tt.mac)
		if got != tt.want {
			t.Errorf("Lookup(%q) = %q, want %q", tt.mac, got, tt.want)
		}
	}
	if got := classify.FormatPrefix("44:4b:5d:01:02:03"); got != "44:4B:5D" {
		t.Errorf("FormatPrefix = %q", got)
	}
}

func TestParseVendorsRejectsBadLine(t *testing.T) {
	_, err := classify.ParseVendors(strings.NewReader("# c\n444B5D GE Healthcare\nXYZ Bad\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err = %v, want one naming line 3", err)
	}
}

// TestFallbackMatchesNmap checks that every embedded prefix is the vendor nmap's table
// names, so the fallback invents nothing.
func TestFallbackMatchesNmap(t *testing.T) {
	nmap, err := classify.LoadVendors(classify.NmapMACPrefixesPath)
	if err != nil {
		t.Skipf("nmap's table is not installed: %v", err)
	}
	if nmap.Len() < 30000 {
		t.Fatalf("nmap table has %d prefixes", nmap.Len())
	}
	fb := classify.FallbackVendors()
	for _, mac := range []string{"44:4b:5d:00:00:00", "58:42:e4:00:00:00",
		"00:d0:75:00:00:00", "00:09:0f:00:00:00", "00:11:32:00:00:00"} {
		a, _ := fb.Lookup(mac)
		b, _ := nmap.Lookup(mac)
		if a != b || a == "" {
			t.Errorf("%s: fallback %q, nmap %q", mac, a, b)
		}
	}
}

func TestProfilesAndControls(t *testing.T) {
	if n := len(classify.Types()); n != 23 {
		t.Fatalf("%d types, want 23", n)
	}
	for _, typ := range classify.Types() {
		p, ok := classify.ProfileOf(typ)
		if !ok || len(classify.ControlsOf(typ)) == 0 {
			t.Errorf("%s: profile %v, controls %v", typ, ok, classify.ControlsOf(typ))
		}
		if p.Tier == 3 && typ.ActivelyTouched() {
			t.Errorf("clinical type %s is actively touched", typ)
		}
	}
	want := map[classify.Type]string{
		classify.LinuxServer:   "164.312(a)(1) 164.312(b) 164.312(c)(1) 164.312(d) 164.312(e)(1)",
		classify.NetworkSwitch: "164.312(e)(1) 164.312(b)",
		classify.PACSServer: "164.312(a)(1) 164.312(b) 164.312(c)(1) 164.312(d) " +
			"164.312(e)(1) 164.308(a)(7)",
	}
	for typ, ids := range want {
		var got []string
		for _, c := range classify.ControlsOf(typ) {
			got = append(got, c.ID)
		}
		if strings.Join(got, " ") != ids {
			t.Errorf("%s controls = %v, want %s", typ, got, ids)
		}
	}
}

// TestReasonsNameTheEvidence checks the words a technician reads.
func TestReasonsNameTheEvidence(t *testing.T) {
	h := classify.Host{MAC: "44:4b:5d:10:33:40", Services: []classify.Service{
		{Port: 104, Protocol: "tcp", Name: "dicom", Scripts: []classify.Script{
			{ID: "dicom-ping", Output: "dicom: DICOM Service Provider discovered!"}}}}}
	r := classify.Classify(&h)
	if r.Type != classify.DICOMModality || r.Strategy != classify.StrategyPassive {
		t.Fatalf("got %s/%s", r.Type, r.Strategy)
	}
	all := strings.Join(r.Reasons, "\n")
	for _, want := range []string{"port 104/tcp answered as DICOM",
		"MAC prefix 44:4B:5D belongs to GE Healthcare"} {
		if !strings.Contains(all, want) {
			t.Errorf("reasons %q lack %q", all, want)
		}
	}
	if r.Confidence < 0.9 {
		t.Errorf("confidence %.2f, want at least 0.9 for two strong pieces", r.Confidence)
	}

	empty := classify.Classify(&classify.Host{})
	if empty.Type != classify.Unknown || empty.Confidence > 0.3 {
		t.Errorf("empty host: %s %.2f", empty.Type, empty.Confidence)
	}
}

// BenchmarkClassify measures throughput over the corpus; scripts/bench.sh prints it as
// hosts per second (target: at least 100,000).
func BenchmarkClassify(b *testing.B) {
	corpus := loadCorpus(b)
	c := classify.New(classify.FallbackVendors())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := &corpus[i%len(corpus)].host
		_ = c.Classify(h)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hosts/s")
}
