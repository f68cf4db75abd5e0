package arp

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardsec/ward/agent/internal/discovery/merge"
	"github.com/wardsec/ward/agent/internal/discovery/netlab"
)

func TestMain(m *testing.M) {
	netlab.Main()
	goleak.VerifyTestMain(m)
}

func TestListenPassiveSubnet(t *testing.T) {
	c := netlab.NewClinic(t)
	c.RunInside(c.Collector, "TestListenInside", "WANT_MAC="+c.MACs[c.Quiet])
}

// TestListenInside runs inside the collector's namespace: on the passive-only subnet it
// hears the quiet host's ARP requests and reports its MAC and address, and it stops
// promptly when cancelled.
func TestListenInside(t *testing.T) {
	if !netlab.Inside() {
		t.Skip("runs inside the namespace clinic only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()

	var mu sync.Mutex
	var got []merge.Sighting
	done := make(chan error, 1)
	go func() {
		done <- Listen(ctx, "eth1", func(sg merge.Sighting) {
			mu.Lock()
			got = append(got, sg)
			mu.Unlock()
			if sg.Addr.String() == netlab.QuietAddr {
				cancel()
			}
		})
	}()

	start := time.Now()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2900*time.Millisecond {
		t.Errorf("listen took %s to see the quiet host or stop", d)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, sg := range got {
		if sg.Addr.String() == netlab.QuietAddr && sg.MAC == os.Getenv("WANT_MAC") &&
			sg.Method == merge.MethodARP && sg.Attributes["interface"] == "eth1" {
			return
		}
	}
	t.Errorf("quiet host %s (%s) not heard: %+v", netlab.QuietAddr, os.Getenv("WANT_MAC"), got)
}

func TestListenNoInterface(t *testing.T) {
	if err := Listen(context.Background(), "no-such-if0", func(merge.Sighting) {}); err == nil {
		t.Fatal("listen on a missing interface succeeded")
	}
}
