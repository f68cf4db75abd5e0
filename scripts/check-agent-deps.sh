#!/usr/bin/env bash
# The agent runs on clinic servers: it must not link anything only the controller needs.
set -euo pipefail

forbidden='dgraph-io/badger|redis/go-redis|go.step.sm/crypto|smallstep|prometheus/client_golang|nats-io|wardsec/ward/controller'
deps=$(go list -deps ./agent/... )
if bad=$(grep -E "$forbidden" <<<"$deps"); then
	echo "the agent module depends on controller-only packages:" >&2
	echo "$bad" >&2
	exit 1
fi
echo "agent dependencies: $(wc -l <<<"$deps") packages, none controller-only"
