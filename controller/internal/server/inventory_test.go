package server

import (
	"testing"
	"time"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// TestDiscoveryReportReachesTheInventory sends a discovery report on a real agent stream
// and finds the device, classified, through the InventoryService once it is acknowledged.
func TestDiscoveryReportReachesTheInventory(t *testing.T) {
	e := newEnv(t, nil)
	a := e.enrollAs("clinic-a", "collector")
	s := e.connectAs(a, "host", "collector")

	report := &wardv1.ConnectRequest{Seq: 1, Body: &wardv1.ConnectRequest_DiscoveryReport{
		DiscoveryReport: &wardv1.DiscoveryReport{ScanId: "scan-1", Subnet: "10.1.0.0/24",
			HostsDone: 254, HostsFound: 1, Complete: true,
			Devices: []*wardv1.DiscoveredDevice{{Mac: "44:4b:5d:10:33:40",
				Addresses: []string{"10.1.0.40"}, Methods: []string{"nmap"},
				Services: []*wardv1.DiscoveredService{{Port: 104, Protocol: "tcp",
					Name: "dicom", Extra: "dicom: DICOM Service Provider discovered!"}}}}}}}
	s.sendAck(report)
	var err error

	// The inventory reads a report once it is stored and acknowledged: wait for it.
	inv := wardv1.NewInventoryServiceClient(e.dial(e.admin))
	var resp *wardv1.ListDevicesResponse
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err = inv.ListDevices(ctxT(t), &wardv1.ListDevicesRequest{Tenant: "clinic-a"})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetDevices()) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(resp.GetDevices()) != 1 {
		t.Fatalf("devices = %v", resp.GetDevices())
	}
	d := resp.GetDevices()[0]
	if d.GetType() != "dicom_modality" || d.GetTier() != 3 || d.GetStrategy() != "passive" ||
		d.GetState() != wardv1.DeviceState_DEVICE_STATE_PENDING_APPROVAL ||
		d.GetCollector() != a.id || d.GetVendor() != "GE Healthcare" {
		t.Errorf("device = %v", d)
	}

	st, err := inv.GetDiscoveryStatus(ctxT(t), &wardv1.GetDiscoveryStatusRequest{})
	if err != nil || len(st.GetScans()) != 1 || !st.GetScans()[0].GetComplete() ||
		st.GetScans()[0].GetDevices() != 1 {
		t.Errorf("discovery status = %v, %v", st, err)
	}
}
