// Package tools pins the build tools Ward uses (buf, the protoc plugins, grpcurl).
// It is its own module, outside go.work, so none of it reaches a Ward binary.
package tools
