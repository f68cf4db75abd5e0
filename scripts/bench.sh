#!/usr/bin/env bash
# Measures a throwaway Ward controller against ward-loadgen's bare mTLS gRPC server with the
# same workload, and prints the figures, their ratios and a verdict per target.
#
#   scripts/bench.sh [--quick] [--bare-only] [--fleet-only] [--keep] [-- ward-loadgen run flags]
#
#   --quick       1,000 idle agents only and shorter pauses (development)
#   --bare-only   no controller: measure the bare server with a development installation
#   --fleet-only  only the fleet figures of ward-loadgen, not the component benchmarks
#   --keep        keep the temporary directory (logs, data) for inspection
#
# Every process listens on loopback only, on ports picked at random. The method is in
# docs/performance.md.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
bin=$root/bin

quick=false bare_only=false fleet_only=false keep=false
extra=()
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=true ;;
	--bare-only) bare_only=true ;;
	--fleet-only) fleet_only=true ;;
	--keep) keep=true ;;
	--) shift; extra=("$@"); break ;;
	-h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench: unknown flag $1" >&2; exit 2 ;;
	esac
	shift
done

need=("$bin/ward-loadgen")
$bare_only || need+=("$bin/ward-controller" "$bin/ward-agent")
for b in "${need[@]}"; do
	[ -x "$b" ] || { echo "bench: $b missing; run make build (make bench does)" >&2; exit 1; }
done

work=$(mktemp -d -t ward-bench.XXXXXX)
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	if $keep; then echo "bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# free_port prints a random loopback TCP port below the ephemeral range that nothing
# listens on.
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 10000))
		if [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then echo "$p"; return; fi
	done
	echo "bench: no free port" >&2
	return 1
}

# wait_listening waits until something accepts on 127.0.0.1:$1 or process $2 dies.
wait_listening() {
	for _ in $(seq 300); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		kill -0 "$2" 2>/dev/null || { echo "bench: process $2 exited early" >&2; return 1; }
		sleep 0.1
	done
	echo "bench: nothing listens on port $1 after 30 s" >&2
	return 1
}

data=$work/controller
run_flags=()
if $bare_only; then
	"$bin/ward-loadgen" devpki --data-dir "$data" >/dev/null
else
	"$bin/ward-controller" init --data-dir "$data" --trust-domain bench.ward.test \
		>"$work/init.log" 2>&1 || { cat "$work/init.log" >&2; exit 1; }
	ctl_port=$(free_port) debug_port=$(free_port)
	"$bin/ward-controller" serve --data-dir "$data" --listen "127.0.0.1:$ctl_port" \
		--metrics-listen "127.0.0.1:$(free_port)" --debug-listen "127.0.0.1:$debug_port" \
		--log-level warn >"$work/controller.log" 2>&1 &
	ctl_pid=$!
	pids+=("$ctl_pid")
	wait_listening "$ctl_port" "$ctl_pid" || { tail -20 "$work/controller.log" >&2; exit 1; }
	echo "bench: controller profiles at http://127.0.0.1:$debug_port/debug/pprof/" >&2
	run_flags+=(--controller "127.0.0.1:$ctl_port" --controller-pid "$ctl_pid"
		--agent-binary "$bin/ward-agent")
fi

bare_port=$(free_port)
"$bin/ward-loadgen" bare --data-dir "$data" --listen "127.0.0.1:$bare_port" \
	--log-level warn >"$work/bare.log" 2>&1 &
bare_pid=$!
pids+=("$bare_pid")
wait_listening "$bare_port" "$bare_pid" || { tail -20 "$work/bare.log" >&2; exit 1; }
run_flags+=(--bare "127.0.0.1:$bare_port" --bare-pid "$bare_pid")

if $quick; then
	run_flags+=(--sizes 1000 --settle 3s --hb-duration 5s --agent-idle 5s)
fi

echo "bench: $(nproc) CPUs, open-file limit $(ulimit -n), go $(go env GOVERSION 2>/dev/null)" >&2
status=0
"$bin/ward-loadgen" run --data-dir "$data" "${run_flags[@]}" "${extra[@]}" \
	>"$work/results.txt" || status=$?

echo
cat "$work/results.txt"
if $fleet_only; then
	[ "$status" -eq 0 ] || tail -20 "$work/controller.log" 2>/dev/null >&2 || true
	exit "$status"
fi
(cd agent && go test -run '^$' -bench BenchmarkHIPAA -benchtime 200x ./internal/checks/ | awk '/^BenchmarkHIPAA/ {printf "baseline evaluation (hipaa-v1, prepared Debian host): %.2f ms per run (target < 100 ms)\n", $3/1e6}')
(cd controller && go test -run '^$' -bench BenchmarkDriftReports -benchtime 5000x ./internal/remediation/ | awk '/^BenchmarkDriftReports/ {for (i = 1; i <= NF; i++) if ($(i+1) == "reports/s") printf "drift reports to incidents and signed commands (500 agents, synced Badger): %d reports/s (target >= 5000)\n", $i}')
(cd pkg && go test -run '^$' -bench '^BenchmarkClassify$' -benchtime 200000x ./classify/ | awk '/^BenchmarkClassify/ {for (i = 1; i < NF; i++) if ($(i+1) == "hosts/s") printf "classification (labelled corpus, one core): %.0f hosts per second (target >= 100000)\n", $i}')
(cd controller && WARD_EVIDENCE_BENCH=1 go test -count=1 -v -run '^TestEvidenceThroughput$' ./internal/evidence/ | grep -E '^(evidence|raw|append)')
# Ward's active scan against nmap alone with the same options, on the namespace clinic
# network of the discovery tests (needs root, nmap and iproute2; about 4 minutes).
if [ "$(id -u)" -eq 0 ] && command -v nmap >/dev/null && command -v ip >/dev/null; then
	(cd agent && WARD_BENCH_SCAN=1 go test -count=1 -v -timeout 15m -run '^TestScanOverhead$' ./internal/discovery/nmap/ | grep -E '^namespace clinic scan') ||
		echo "namespace clinic scan: over target or failed (run TestScanOverhead with WARD_BENCH_SCAN=1 to see why)"
else
	echo "namespace clinic scan: skipped (needs root, nmap and iproute2)"
fi
if [ "$status" -ne 0 ]; then
	echo "bench: ward-loadgen failed (status $status); controller log tail:" >&2
	tail -20 "$work/controller.log" 2>/dev/null >&2 || true
fi
exit "$status"
