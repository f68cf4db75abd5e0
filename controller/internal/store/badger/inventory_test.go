package badger

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/site"
)

func TestUpdateDeviceCreatesMergesAndAbsorbs(t *testing.T) {
	s := remediationStore(t)
	ctx := context.Background()

	_, err := s.UpdateDevice(ctx, "t1", "ip:10.0.0.5", nil,
		func(d *store.Device, found bool, _ []store.Device) error {
			if found {
				t.Error("new device reported found")
			}
			d.Addresses, d.Type = []string{"10.0.0.5"}, "printer"
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}

	d, err := s.UpdateDevice(ctx, "t1", "mac:00:1b:a9:00:00:01", []string{"ip:10.0.0.5"},
		func(d *store.Device, found bool, absorbed []store.Device) error {
			if found || len(absorbed) != 1 || absorbed[0].Type != "printer" {
				t.Errorf("found %v, absorbed %+v", found, absorbed)
			}
			d.MAC, d.Type = "00:1b:a9:00:00:01", absorbed[0].Type
			return nil
		})
	if err != nil || d.ID != "mac:00:1b:a9:00:00:01" || d.Tenant != "t1" {
		t.Fatalf("device %+v, err %v", d, err)
	}

	if _, err := s.GetDevice(ctx, "t1", "ip:10.0.0.5"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("absorbed record still there: %v", err)
	}
	all, err := s.ListDevices(ctx, "t1", store.DeviceFilter{Type: "printer"})
	if err != nil || len(all) != 1 {
		t.Fatalf("list: %v %v", all, err)
	}
	if n, _ := s.CountDevices(ctx, "t1"); n != 1 {
		t.Errorf("count %d", n)
	}
	if _, err := s.UpdateDevice(ctx, "nope", "ip:1.2.3.4", nil,
		func(*store.Device, bool, []store.Device) error { return nil }); !errors.Is(err,
		store.ErrNotFound) {
		t.Errorf("unknown tenant: %v", err)
	}

	boom := errors.New("boom")
	if _, err := s.UpdateDevice(ctx, "t1", "ip:10.0.0.9", nil,
		func(*store.Device, bool, []store.Device) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("fn error: %v", err)
	}
	if _, err := s.GetDevice(ctx, "t1", "ip:10.0.0.9"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("failed update stored something: %v", err)
	}
}

func TestUpdateDeviceConcurrentMergesLoseNothing(t *testing.T) {
	s := remediationStore(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateDevice(ctx, "t1", "ip:10.0.0.7", nil,
				func(d *store.Device, _ bool, _ []store.Device) error {
					d.Methods = append(d.Methods, string(rune('a'+i)))
					return nil
				})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	d, err := s.GetDevice(ctx, "t1", "ip:10.0.0.7")
	if err != nil || len(d.Methods) != 8 {
		t.Fatalf("methods %v, err %v; want all 8 writers", d.Methods, err)
	}
}

func TestScansSiteConfigAndCursor(t *testing.T) {
	s := remediationStore(t)
	ctx := context.Background()

	for _, done := range []uint32{10, 254} {
		if err := s.PutScan(ctx, store.ScanStatus{Tenant: "t1", Collector: "c1",
			ScanID: "s1", HostsDone: done}); err != nil {
			t.Fatal(err)
		}
	}
	scans, err := s.ListScans(ctx, "t1")
	if err != nil || len(scans) != 1 || scans[0].HostsDone != 254 {
		t.Fatalf("scans %+v, err %v", scans, err)
	}

	if _, err := s.GetSiteConfig(ctx, "t1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("no config yet: %v", err)
	}
	want := store.SiteConfig{Config: site.Config{Subnets: []string{"10.0.0.0/24"},
		ProbeRate: 50, Schedule: site.Schedule{Interval: site.Duration(time.Hour)}},
		UpdatedBy: "alice"}
	if err := s.PutSiteConfig(ctx, "t1", want); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSiteConfig(ctx, "t1")
	if err != nil || got.Config.ProbeRate != 50 || got.Config.Subnets[0] != "10.0.0.0/24" ||
		got.Config.Schedule.Interval != site.Duration(time.Hour) || got.UpdatedBy != "alice" {
		t.Fatalf("config %+v, err %v", got, err)
	}

	for _, seq := range []uint64{5, 3} {
		if err := s.SetDiscoveryCursor(ctx, "t1", "c1", seq); err != nil {
			t.Fatal(err)
		}
	}
	if seq, err := s.DiscoveryCursor(ctx, "t1", "c1"); err != nil || seq != 5 {
		t.Fatalf("cursor %d, err %v; want 5 (never lowered)", seq, err)
	}
}
