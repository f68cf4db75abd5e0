// Package loadgen measures a Ward controller against a bare mTLS gRPC server under the same
// workload: enrollments (against handshakes), the memory each idle connected agent costs,
// and heartbeat throughput and ack latency with durable acknowledgements.
//
// The pieces are a Bare server (an AgentService that answers Hello with Welcome and acks
// every message at once, storing nothing), simulated agents that each hold their own key,
// certificate and mTLS connection, and Run, which drives both servers through one run and
// returns Results. The servers run in their own processes; loadgen reads their resident
// memory from /proc, so its own memory is never counted against them.
package loadgen
