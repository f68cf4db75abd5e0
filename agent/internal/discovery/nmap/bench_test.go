package nmap

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/wardsec/ward/agent/internal/discovery/merge"
	"github.com/wardsec/ward/agent/internal/discovery/netlab"
	"github.com/wardsec/ward/agent/internal/logtest"
)

// TestScanOverhead times Ward's active scan of the namespace clinic against nmap alone
// run with exactly the scanner's two invocations (same options, same live targets, XML to
// standard output), alternating, and prints one line for scripts/bench.sh. It runs only
// with WARD_BENCH_SCAN=1 (make bench), as root; it fails when the overhead passes 10%.
func TestScanOverhead(t *testing.T) {
	if os.Getenv("WARD_BENCH_SCAN") == "" {
		t.Skip("benchmark: set WARD_BENCH_SCAN=1 (make bench runs it)")
	}
	c := netlab.NewClinic(t)
	wrapper := c.Wrapper(c.Collector, "nmap")
	s, err := New(Config{Site: labSite(t), Binary: wrapper, Privileged: true, NoDNS: true,
		Log: logtest.New(t)})
	if err != nil {
		t.Fatal(err)
	}

	const rounds = 2
	var ward, alone time.Duration
	for i := range rounds {
		var live []string
		start := time.Now()
		set := merge.NewSet(nil)
		if _, err := s.Scan(context.Background(), func(sg merge.Sighting) {
			if set.Add(sg) && sg.Method == merge.MethodNmap && sg.Addr.IsValid() &&
				!containsAddr(live, sg.Addr) {
				live = append(live, sg.Addr.String())
			}
		}, nil); err != nil {
			t.Fatal(err)
		}
		w := time.Since(start)

		start = time.Now()
		for _, args := range [][]string{s.discoveryArgs(), s.serviceArgs(live)} {
			cmd := exec.Command(wrapper, append(args, "-oX", "-")...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("nmap alone: %v: %s", err, out)
			}
		}
		a := time.Since(start)
		t.Logf("round %d: ward %s, nmap alone %s, %d live hosts", i+1,
			w.Round(time.Millisecond), a.Round(time.Millisecond), len(live))
		ward += w
		alone += a
	}
	overhead := 100 * (ward.Seconds() - alone.Seconds()) / alone.Seconds()
	line := fmt.Sprintf("namespace clinic scan (nmap two passes, %d rounds): ward %.1f s, "+
		"nmap alone %.1f s, overhead %+.1f%% (target < 10%%)", rounds,
		ward.Seconds()/rounds, alone.Seconds()/rounds, overhead)
	fmt.Println(line)
	if overhead >= 10 {
		t.Errorf("%s: over target", line)
	}
}

func containsAddr(list []string, a netip.Addr) bool {
	for _, s := range list {
		if s == a.String() {
			return true
		}
	}
	return false
}
