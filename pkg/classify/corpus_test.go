package classify_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/wardsec/ward/pkg/classify"
	"github.com/wardsec/ward/pkg/nmapxml"
)

// labelled is one host of the corpus with the type a technician gave it.
type labelled struct {
	file string
	host classify.Host
	want classify.Type
}

// loadCorpus reads testdata/labels.tsv and the nmap files it names. Every host in the
// files must be labelled and every label must name a host.
func loadCorpus(t testing.TB) []labelled {
	t.Helper()
	f, err := os.Open("testdata/labels.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	labels := map[string]classify.Type{} // file + "\t" + ip -> type
	var files []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, "\t")
		if len(parts) != 3 || !classify.Type(parts[2]).Valid() {
			t.Fatalf("labels.tsv: bad line %q", line)
		}
		if _, ok := labels[parts[0]+"\t"+parts[1]]; !ok && !contains(files, parts[0]) {
			files = append(files, parts[0])
		}
		labels[parts[0]+"\t"+parts[1]] = classify.Type(parts[2])
	}

	var out []labelled
	for _, name := range files {
		hosts, err := nmapxml.ParseFile(filepath.Join("testdata", "nmap", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hosts {
			key := name + "\t" + h.IP
			want, ok := labels[key]
			if !ok {
				t.Fatalf("%s: host %s has no label", name, h.IP)
			}
			delete(labels, key)
			out = append(out, labelled{file: name, host: h, want: want})
		}
	}
	for key := range labels {
		t.Fatalf("label %q names no host in the corpus", key)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestCorpusAccuracy classifies every labelled host, reports accuracy per type, and fails
// under 95% overall or when any type of the table has no host in the corpus.
func TestCorpusAccuracy(t *testing.T) {
	corpus := loadCorpus(t)
	c := classify.New(vendorsForTest(t))

	total, right := map[classify.Type]int{}, map[classify.Type]int{}
	for _, l := range corpus {
		r := c.Classify(&l.host)
		total[l.want]++
		if r.Type == l.want {
			right[l.want]++
			continue
		}
		t.Logf("MISS %s %s: got %s (%.2f), want %s; reasons: %s", l.file, l.host.IP,
			r.Type, r.Confidence, l.want, strings.Join(r.Reasons, "; "))
	}

	var lines []string
	all, ok := 0, 0
	for _, typ := range classify.Types() {
		if total[typ] == 0 {
			t.Errorf("type %s has no host in the corpus", typ)
			continue
		}
		all += total[typ]
		ok += right[typ]
		lines = append(lines, fmt.Sprintf("%-22s %2d/%-2d %5.1f%%", typ, right[typ], total[typ],
			100*float64(right[typ])/float64(total[typ])))
	}
	sort.Strings(lines)
	for _, l := range lines {
		t.Log(l)
	}
	accuracy := 100 * float64(ok) / float64(all)
	t.Logf("overall: %d/%d hosts typed correctly (%.1f%%)", ok, all, accuracy)
	if accuracy < 95 {
		t.Errorf("accuracy %.1f%% is under 95%%", accuracy)
	}
}

// TestCorpusClinicalSafety checks that no host labelled clinical is given a type Ward
// probes or enrolls on its own, and that every host with clinical evidence gets a
// clinical type.
func TestCorpusClinicalSafety(t *testing.T) {
	c := classify.New(vendorsForTest(t))
	for _, l := range loadCorpus(t) {
		r := c.Classify(&l.host)
		if l.want.Clinical() && (r.Type.ActivelyTouched() || !r.Type.Clinical()) {
			t.Errorf("%s %s: clinical host (%s) classified %s, strategy %s, enrollment %s",
				l.file, l.host.IP, l.want, r.Type, r.Strategy, r.Enrollment)
		}
		checkInvariants(t, l.host.IP, r)
	}
}

// vendorsForTest uses nmap's table when installed, else the fallback.
func vendorsForTest(t testing.TB) *classify.Vendors {
	v, err := classify.LoadVendors(classify.NmapMACPrefixesPath)
	if err != nil {
		t.Logf("using the embedded vendor table: %v", err)
	}
	return v
}

// checkInvariants checks what must hold for every result.
func checkInvariants(t *testing.T, name string, r classify.Result) {
	t.Helper()
	p, ok := classify.ProfileOf(r.Type)
	switch {
	case !ok:
		t.Errorf("%s: unknown type %q", name, r.Type)
	case r.Tier != p.Tier || r.Strategy != p.Strategy || r.Enrollment != p.Enrollment ||
		r.ShouldMonitor != p.ShouldMonitor:
		t.Errorf("%s: result %+v does not follow the profile %+v", name, r, p)
	case r.Confidence < 0 || r.Confidence > 1:
		t.Errorf("%s: confidence %v outside 0..1", name, r.Confidence)
	case len(r.Reasons) == 0:
		t.Errorf("%s: no reasons", name)
	case len(r.Controls) == 0:
		t.Errorf("%s: no controls", name)
	case r.Clinical && (!r.Type.Clinical() || r.Type.ActivelyTouched()):
		t.Errorf("%s: clinical evidence but type %s (%s, %s)", name, r.Type, r.Strategy,
			r.Enrollment)
	}
}

// BenchmarkClassifyParallel measures throughput with every core classifying.
func BenchmarkClassifyParallel(b *testing.B) {
	corpus := loadCorpus(b)
	c := classify.New(classify.FallbackVendors())
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			_ = c.Classify(&corpus[i%len(corpus)].host)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hosts/s")
}

// TestClassifyConcurrent classifies the corpus from several goroutines at once (the
// classifier reuses working memory between calls) and expects the sequential results.
func TestClassifyConcurrent(t *testing.T) {
	corpus := loadCorpus(t)
	c := classify.New(classify.FallbackVendors())
	want := make([]string, len(corpus))
	for i := range corpus {
		r := c.Classify(&corpus[i].host)
		want[i] = fmt.Sprint(r.Type, r.Confidence, r.Reasons)
	}

	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for n := 0; n < 20; n++ {
				for i := range corpus {
					r := c.Classify(&corpus[i].host)
					if got := fmt.Sprint(r.Type, r.Confidence, r.Reasons); got != want[i] {
						errs <- fmt.Sprintf("%s: %s, want %s", corpus[i].host.IP, got, want[i])
						return
					}
				}
			}
			errs <- ""
		}()
	}
	for g := 0; g < 8; g++ {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}
