// Package version carries the version string stamped into Ward binaries at build time.
package version

// Version is set with -ldflags "-X github.com/wardsec/ward/pkg/version.Version=...".
var Version = "dev"
