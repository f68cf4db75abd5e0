package agentapi

import (
	"errors"
	"fmt"
	"net/netip"
	"unicode/utf8"

	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Bounds on message bodies, beyond the overall message size limit.
const (
	maxID          = 128   // ids, versions, names
	maxText        = 4096  // observed values, messages, banners
	maxOutput      = 65536 // command step output
	maxResults     = 5000  // check results in one drift report
	maxDevices     = 4096  // devices in one discovery report
	maxServices    = 1024  // services of one device
	maxAddresses   = 64    // addresses of one device
	maxAttributes  = 64    // attributes of one device
	maxSteps       = 256   // steps of one command result
	maxHashBytes   = 64    // checkpoint head hash
	maxSignature   = 256   // witness signature
	maxMethodCount = 8     // discovery methods of one device
	maxPolls       = 4096  // device polls in one poll report
	maxInterfaces  = 512   // interfaces of one device poll
	maxOperStatus  = 7     // highest IF-MIB ifOperStatus (lowerLayerDown)
)

// errInvalid marks a malformed message; its text names the problem, never echoes data.
var errInvalid = errors.New("invalid message")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errInvalid, fmt.Sprintf(format, args...))
}

// messageType returns the stored type name of m's body ("heartbeat", ...), or "" when m
// has no body.
func messageType(m *wardv1.ConnectRequest) string {
	switch m.GetBody().(type) {
	case *wardv1.ConnectRequest_Hello:
		return "hello"
	case *wardv1.ConnectRequest_Heartbeat:
		return "heartbeat"
	case *wardv1.ConnectRequest_DriftReport:
		return "drift_report"
	case *wardv1.ConnectRequest_DiscoveryReport:
		return "discovery_report"
	case *wardv1.ConnectRequest_CommandResult:
		return "command_result"
	case *wardv1.ConnectRequest_WitnessSignature:
		return "witness_signature"
	case *wardv1.ConnectRequest_DevicePollReport:
		return "device_poll_report"
	}
	return ""
}

// validate checks a sequenced (non-hello) message: a body, a sequence number, a valid
// timestamp and the body's own bounds. It does not check what the body names; see
// checkOwnership.
func validate(m *wardv1.ConnectRequest) error {
	switch messageType(m) {
	case "":
		return invalid("no body")
	case "hello":
		return invalid("hello after the first message")
	}
	if m.GetSeq() == 0 {
		return invalid("seq 0 on a sequenced message")
	}
	if m.CreatedAt != nil {
		if err := m.GetCreatedAt().CheckValid(); err != nil {
			return invalid("created_at out of range")
		}
	}

	switch b := m.GetBody().(type) {
	case *wardv1.ConnectRequest_DriftReport:
		return validateDrift(b.DriftReport)
	case *wardv1.ConnectRequest_DiscoveryReport:
		return validateDiscovery(b.DiscoveryReport)
	case *wardv1.ConnectRequest_CommandResult:
		return validateCommandResult(b.CommandResult)
	case *wardv1.ConnectRequest_WitnessSignature:
		return validateWitness(b.WitnessSignature)
	case *wardv1.ConnectRequest_DevicePollReport:
		return validatePolls(b.DevicePollReport)
	}
	return nil
}

// validatePolls checks a device poll report's bounds: at most maxPolls polls, one per
// device, each naming a device and an IP address, with at most maxInterfaces interfaces.
func validatePolls(r *wardv1.DevicePollReport) error {
	if err := texts(maxID, r.GetTenant()); err != nil {
		return fmt.Errorf("device poll report: %w", err)
	}
	if len(r.GetPolls()) > maxPolls {
		return invalid("device poll report: more than %d polls", maxPolls)
	}
	seen := make(map[string]bool, len(r.GetPolls()))
	for _, p := range r.GetPolls() {
		if err := validatePoll(p); err != nil {
			return fmt.Errorf("device poll report: %w", err)
		}
		if seen[p.GetDeviceId()] {
			return invalid("device poll report: a device polled twice")
		}
		seen[p.GetDeviceId()] = true
	}
	return nil
}

func validatePoll(p *wardv1.DevicePoll) error {
	switch {
	case p.GetDeviceId() == "":
		return invalid("poll without device id")
	case len(p.GetInterfaces()) > maxInterfaces:
		return invalid("poll with more than %d interfaces", maxInterfaces)
	case p.PolledAt == nil:
		return invalid("poll without polled_at")
	case p.GetPolledAt().CheckValid() != nil:
		return invalid("poll with polled_at out of range")
	}
	if err := texts(maxID, p.GetDeviceId(), p.GetAddress(), p.GetSysName()); err != nil {
		return err
	}
	if err := texts(maxText, p.GetError()); err != nil {
		return err
	}
	if _, err := netip.ParseAddr(p.GetAddress()); err != nil {
		return invalid("poll address is not an IP address")
	}
	for _, ifc := range p.GetInterfaces() {
		if err := texts(maxID, ifc.GetName()); err != nil {
			return err
		}
		if ifc.GetOperStatus() > maxOperStatus {
			return invalid("interface oper status above %d", maxOperStatus)
		}
	}
	return nil
}

func validateDrift(r *wardv1.DriftReport) error {
	if err := texts(maxID, r.GetBaselineId(), r.GetBaselineVersion(), r.GetTrigger(),
		r.GetCommandId()); err != nil {
		return fmt.Errorf("drift report: %w", err)
	}
	if len(r.GetResults()) > maxResults {
		return invalid("drift report: more than %d results", maxResults)
	}
	for _, c := range r.GetResults() {
		if c.GetCheckId() == "" {
			return invalid("drift report: result without check id")
		}
		if err := texts(maxID, c.GetCheckId()); err != nil {
			return fmt.Errorf("drift report: %w", err)
		}
		if err := texts(maxText, c.GetObserved(), c.GetMessage()); err != nil {
			return fmt.Errorf("drift report: %w", err)
		}
	}
	return nil
}

func validateDiscovery(r *wardv1.DiscoveryReport) error {
	if err := texts(maxID, r.GetScanId()); err != nil {
		return fmt.Errorf("discovery report: %w", err)
	}
	if err := texts(maxText, r.GetError()); err != nil {
		return fmt.Errorf("discovery report: %w", err)
	}
	if s := r.GetSubnet(); s != "" {
		if _, err := netip.ParsePrefix(s); err != nil {
			return invalid("discovery report: subnet is not a CIDR prefix")
		}
	}
	if len(r.GetDevices()) > maxDevices {
		return invalid("discovery report: more than %d devices", maxDevices)
	}
	for _, d := range r.GetDevices() {
		if err := validateDevice(d); err != nil {
			return fmt.Errorf("discovery report: %w", err)
		}
	}
	return nil
}

func validateDevice(d *wardv1.DiscoveredDevice) error {
	switch {
	case len(d.GetAddresses()) > maxAddresses:
		return invalid("device with more than %d addresses", maxAddresses)
	case len(d.GetServices()) > maxServices:
		return invalid("device with more than %d services", maxServices)
	case len(d.GetAttributes()) > maxAttributes:
		return invalid("device with more than %d attributes", maxAttributes)
	case len(d.GetMethods()) > maxMethodCount:
		return invalid("device with more than %d methods", maxMethodCount)
	}
	if err := texts(maxID, d.GetMac(), d.GetVendor()); err != nil {
		return err
	}
	if err := texts(maxText, d.GetHostname(), d.GetOsGuess(), d.GetDescription()); err != nil {
		return err
	}
	if err := texts(maxID, d.GetAddresses()...); err != nil {
		return err
	}
	if err := texts(maxID, d.GetMethods()...); err != nil {
		return err
	}
	for k, v := range d.GetAttributes() {
		if err := texts(maxID, k); err != nil {
			return err
		}
		if err := texts(maxText, v); err != nil {
			return err
		}
	}
	for _, s := range d.GetServices() {
		if err := texts(maxID, s.GetProtocol(), s.GetName(), s.GetProduct(),
			s.GetVersion()); err != nil {
			return err
		}
		if err := texts(maxText, s.GetExtra()); err != nil {
			return err
		}
	}
	return nil
}

func validateCommandResult(r *wardv1.CommandResult) error {
	if r.GetCommandId() == "" {
		return invalid("command result without command id")
	}
	if err := texts(maxID, r.GetCommandId()); err != nil {
		return fmt.Errorf("command result: %w", err)
	}
	if err := texts(maxText, r.GetRefusalReason()); err != nil {
		return fmt.Errorf("command result: %w", err)
	}
	if len(r.GetSteps()) > maxSteps {
		return invalid("command result: more than %d steps", maxSteps)
	}
	for _, s := range r.GetSteps() {
		if err := texts(maxID, s.GetAction()); err != nil {
			return fmt.Errorf("command result: %w", err)
		}
		if err := texts(maxOutput, s.GetOutput()); err != nil {
			return fmt.Errorf("command result: %w", err)
		}
	}
	return nil
}

func validateWitness(w *wardv1.WitnessSignature) error {
	switch {
	case len(w.GetHeadHash()) > maxHashBytes:
		return invalid("witness signature: head hash longer than %d bytes", maxHashBytes)
	case len(w.GetSignature()) > maxSignature:
		return invalid("witness signature: signature longer than %d bytes", maxSignature)
	}
	return texts(maxText, w.GetInconsistency())
}

// texts checks that every s is valid UTF-8 of at most max bytes.
func texts(max int, ss ...string) error {
	for _, s := range ss {
		if len(s) > max {
			return invalid("field longer than %d bytes", max)
		}
		if !utf8.ValidString(s) {
			return invalid("field is not valid UTF-8")
		}
	}
	return nil
}
