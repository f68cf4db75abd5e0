package discovery

import (
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/agent/internal/discovery/merge"
	"github.com/wardsec/ward/pkg/scrub"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Bounds of one device on the wire (the controller refuses larger ones).
const (
	maxID         = 128
	maxText       = 4096
	maxAddresses  = 64
	maxServices   = 1024
	maxAttributes = 64
)

// deviceProto converts a merged device to its wire form: free text scrubbed of PHI,
// every field cut to the controller's bounds, at most maxAttributes attributes (the
// per-method seen times first, then the rest in key order).
func deviceProto(d merge.Device) *wardv1.DiscoveredDevice {
	out := &wardv1.DiscoveredDevice{
		Mac: d.MAC, Hostname: text(d.Hostname, maxText), Vendor: text(d.Vendor, maxID),
		OsGuess: text(d.OS, maxText), Description: text(d.Description, maxText),
		Methods:   d.MethodNames(),
		FirstSeen: timestamppb.New(d.First), LastSeen: timestamppb.New(d.Last),
		Attributes: map[string]string{},
	}
	for i, a := range d.Addresses {
		if i == maxAddresses {
			break
		}
		out.Addresses = append(out.Addresses, a.String())
	}
	for i, s := range d.Services {
		if i == maxServices {
			break
		}
		out.Services = append(out.Services, &wardv1.DiscoveredService{Port: uint32(s.Port),
			Protocol: text(s.Protocol, maxID), Name: text(s.Name, maxID),
			Product: text(s.Product, maxID), Version: text(s.Version, maxID),
			Extra: text(s.Extra, maxText)})
	}
	for _, m := range out.Methods {
		seen := d.Methods[m]
		out.Attributes["seen."+m] = seen.First.UTC().Format("2006-01-02T15:04:05Z") + "/" +
			seen.Last.UTC().Format("2006-01-02T15:04:05Z")
	}
	keys := make([]string, 0, len(d.Attributes))
	for k := range d.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if len(out.Attributes) == maxAttributes {
			break
		}
		out.Attributes[text(k, maxID)] = text(d.Attributes[k], maxText)
	}
	return out
}

// text scrubs s and cuts it to at most max bytes of valid UTF-8.
func text(s string, max int) string {
	if s == "" {
		return ""
	}
	s = strings.ToValidUTF8(scrub.Text(s), "?")
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// reportSubnet names the scanned subnet when there is exactly one.
func reportSubnet(prefixes []netip.Prefix) string {
	if len(prefixes) == 1 {
		return prefixes[0].String()
	}
	return ""
}
