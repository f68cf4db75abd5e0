// Package svcpkg answers and changes service and package state. On a real root ("/") it
// asks the real tools (systemctl, dpkg-query, rpm, apt-get, dnf). On any other root, where
// systemd cannot run (tests, the demo), a provider keeps the state in a file under that
// root (SimStateFile) and says "simulated" in every log line and result; nothing else in
// Ward is simulated.
package svcpkg

import (
	"context"
	"log/slog"
	"strings"

	"github.com/wardsec/ward/agent/internal/hostfs"
)

// Service is the state of one systemd unit.
type Service struct {
	Exists  bool // the unit is known
	Active  bool
	Enabled bool
}

// Package is the state of one package.
type Package struct {
	Installed bool
	Version   string // full version as the package manager prints it
}

// Provider reads and changes services and packages. Implementations are safe for
// concurrent use.
type Provider interface {
	// Simulated reports whether state lives in SimStateFile rather than the real system.
	Simulated() bool
	// Service returns a unit's state; a unit that does not exist is not an error.
	Service(ctx context.Context, name string) (Service, error)
	// Control runs op (one of the Op constants) on a unit.
	Control(ctx context.Context, op Op, name string) error
	// Package returns a package's state; an absent package is not an error.
	Package(ctx context.Context, name string) (Package, error)
	// ApplySecurityUpdates installs pending security updates and returns a summary.
	ApplySecurityUpdates(ctx context.Context) (string, error)
	// CompareVersions compares two versions of the platform's package manager.
	CompareVersions(a, b string) int
}

// Op is an operation on a service.
type Op string

// Service operations.
const (
	OpRestart Op = "restart"
	OpReload  Op = "reload"
	OpEnable  Op = "enable"  // enable at boot and start now
	OpDisable Op = "disable" // disable at boot and stop now
)

// Family is the package manager family.
type Family string

// Families.
const (
	FamilyDeb     Family = "deb"
	FamilyRPM     Family = "rpm"
	FamilyUnknown Family = ""
)

// New returns the real provider when fsys is the real root, otherwise the simulated one.
// family selects dpkg or rpm for packages. log is required.
func New(fsys *hostfs.FS, family Family, log *slog.Logger) Provider {
	if fsys.IsRealRoot() {
		return &system{family: family, log: log}
	}
	return &simulated{fs: fsys, family: family, log: log.With("simulated", true)}
}

// unit normalises a unit name: ".service" is implied.
func unit(name string) string { return strings.TrimSuffix(name, ".service") }
