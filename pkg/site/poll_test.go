package site

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestPollDefaultsAndTargets(t *testing.T) {
	c, err := Parse([]byte(`{"subnets": ["10.20.0.0/24"], "passive_subnets": ["10.20.0.192/26"],
		"exclude": ["10.20.0.7"], "poll": {"targets": [
		{"device": "mac:00:11:22:33:44:55", "address": "10.20.0.2"},
		{"device": "ip:10.20.0.7", "address": "10.20.0.7"},
		{"device": "ip:10.20.0.200", "address": "10.20.0.200"},
		{"device": "ip:192.168.1.1", "address": "192.168.1.1"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(c.Poll.Interval); got != DefaultPollInterval {
		t.Errorf("poll interval = %s, want the default %s", got, DefaultPollInterval)
	}
	// Excluded, passive-only and out-of-site targets are never polled.
	got := c.PollTargets()
	if len(got) != 1 || got[0].Device != "mac:00:11:22:33:44:55" {
		t.Errorf("PollTargets = %+v, want only the device at 10.20.0.2", got)
	}
	if w := c.WithoutTargets(); len(w.Poll.Targets) != 0 || len(c.Poll.Targets) != 4 {
		t.Errorf("WithoutTargets changed the original or kept targets")
	}
}

func TestPollRefused(t *testing.T) {
	tests := []struct {
		name, poll, want string
	}{
		{"interval too short", `{"interval": "1s"}`, "poll.interval 1s"},
		{"interval too long", `{"interval": "2h"}`, "poll.interval 2h0m0s"},
		{"bad address", `{"targets": [{"device": "ip:x", "address": "switch"}]}`,
			`address "switch" is not an IP address`},
		{"no device", `{"targets": [{"address": "10.20.0.2"}]}`, "device id empty"},
		{"twice", `{"targets": [{"device": "a", "address": "10.20.0.2"},
			{"device": "a", "address": "10.20.0.3"}]}`, `device "a" listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(`{"subnets": ["10.20.0.0/24"], "poll": ` + tt.poll + `}`))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %q", err, tt.want)
			}
		})
	}

	var many []PollTarget
	for i := range MaxPollTargets + 1 {
		many = append(many, PollTarget{Device: "d" + string(rune('a'+i%26)) +
			strings.Repeat("x", i/26), Address: "10.20.0.2"})
	}
	b, _ := json.Marshal(Config{Subnets: []string{"10.20.0.0/24"}, Poll: Poll{Targets: many}})
	if _, err := Parse(b); err == nil || !strings.Contains(err.Error(), "at most 4096") {
		t.Errorf("%d targets: err = %v", len(many), err)
	}
}

func TestPollRoundTrip(t *testing.T) {
	in := Config{Subnets: []string{"10.20.0.0/24"}, Poll: Poll{
		Interval: Duration(30 * time.Second),
		Targets:  []PollTarget{{Device: "ip:10.20.0.2", Address: "10.20.0.2"}}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(out.Poll.Interval) != 30*time.Second || len(out.Poll.Targets) != 1 ||
		out.Poll.Targets[0] != in.Poll.Targets[0] {
		t.Errorf("round trip: %+v", out.Poll)
	}
}
