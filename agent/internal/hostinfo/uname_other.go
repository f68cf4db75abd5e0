//go:build !linux

package hostinfo

// kernelRelease is unknown off Linux.
func kernelRelease() string { return "" }
