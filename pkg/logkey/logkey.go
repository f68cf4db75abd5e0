// Package logkey holds the field keys of Ward's structured logs, so that every component
// names the same thing the same way and logs can be searched across them.
package logkey

// Field keys. Values logged under them must never be secrets: log certificate serials,
// fingerprints, identities and expiries, never keys or tokens.
const (
	Agent       = "agent"        // agent id
	Tenant      = "tenant"       // tenant id
	Operator    = "operator"     // operator name
	Identity    = "identity"     // spiffe id of the peer
	Peer        = "peer"         // remote network address
	Method      = "method"       // gRPC full method name
	Seq         = "seq"          // per-agent sequence number
	MessageType = "message_type" // agent message body type
	Serial      = "serial"       // certificate serial, hex
	NotAfter    = "not_after"    // certificate expiry
	TokenID     = "token_id"     // public enrollment token id (never the secret)
	Reason      = "reason"       // why a decision was taken
	Attempt     = "attempt"      // retry attempt number
	Backoff     = "backoff"      // wait before the next attempt
	Addr        = "addr"         // listen or dial address
	Error       = "err"          // error text
	Count       = "count"        // a number of things
	Duration    = "duration"     // elapsed time
	Version     = "version"      // software or document version
	Path        = "path"         // file system path
	Command     = "command"      // command id
	Check       = "check"        // baseline check id
	Runbook     = "runbook"      // runbook id
	Device      = "device"       // inventory device id ("mac:..." or "ip:...")
	DeviceType  = "device_type"  // classified device type
	State       = "state"        // a state machine's state
	Scan        = "scan"         // discovery scan id
	Roles       = "roles"        // agent roles ("host", "collector")
)
