#!/usr/bin/env bash
# make demo: a throwaway Ward installation on loopback, narrated step by step.
# Everything lives in a temporary directory that is removed at the end.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
work=$(mktemp -d -t ward-demo.XXXXXX)
interval=2s          # heartbeat interval for the demo (the default is 30s)
pids=()

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '   %s\n' "$*"; }

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

grpc_port=$(free_port)
http_port=$(free_port)
data="$work/controller"
export WARD_CONTROLLER="127.0.0.1:$grpc_port"
export WARD_CERT="$data/operators/admin/cert.pem"
export WARD_KEY="$data/operators/admin/key.pem"
export WARD_CA="$data/ca.pem"

start_controller() {
	"$bin/ward-controller" serve --data-dir "$data" --listen "127.0.0.1:$grpc_port" \
		--metrics-listen "127.0.0.1:$http_port" --heartbeat-interval "$interval" \
		>>"$work/controller.log" 2>&1 &
	controller_pid=$!
	pids+=("$controller_pid")
	for _ in $(seq 100); do
		curl -fsS "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "controller did not become ready; its log:" >&2
	tail -20 "$work/controller.log" >&2
	exit 1
}

# wait_for DESCRIPTION SECONDS COMMAND...: retry COMMAND until it succeeds.
wait_for() {
	local what=$1 secs=$2; shift 2
	for _ in $(seq $((secs * 4))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.25
	done
	echo "timed out waiting for $what" >&2
	exit 1
}

# acked_sum: the sum of the acknowledged sequence numbers of agents 1 and 2.
acked_sum() {
	"$bin/wardctl" agent list --tenant clinic-a -o json | python3 -c '
import json, sys
ids = sys.argv[1:]
print(sum(int(a.get("acked_seq", 0)) for a in json.load(sys.stdin) if a["id"] in ids))' "$@"
}
acked_beyond() { [ "$(acked_sum "$agent_id_1" "$agent_id_2")" -gt "$1" ]; }

online_count() {
	"$bin/wardctl" agent list --tenant clinic-a -o json |
		python3 -c 'import json,sys; print(sum(1 for a in json.load(sys.stdin) if a["online"]))'
}
expect_online() { [ "$(online_count)" = "$1" ]; }

# Agents evaluate and remediate the host under --host-root: in this demo each one gets a
# prepared tree (a compliant Debian server from checkstest), never the real /etc.
(cd "$root" && CGO_ENABLED=0 go build -o "$work/hosttree" \
	./agent/internal/checks/checkstest/hosttree)

# incident_field AGENT CHECK FIELD: FIELD of the agent's newest incident for CHECK.
incident_field() {
	"$bin/wardctl" incident list --agent "$1" -o json | python3 -c '
import json, sys
check, field = sys.argv[1], sys.argv[2]
found = [i for i in json.load(sys.stdin) if i.get("check") == check]
print(found[-1].get(field, "") if found else "")' "$2" "$3"
}
incident_in() { [ "$(incident_field "$1" "$2" state)" = "$3" ]; }

say "1. Initialise a controller (CA, serving certificate, policy key, first admin)"
"$bin/ward-controller" init --data-dir "$data" --trust-domain demo.ward.test \
	2>>"$work/controller.log"
note "installation in $data; the admin's credentials are in operators/admin/"

say "2. Start the controller on 127.0.0.1:$grpc_port (metrics on :$http_port)"
start_controller
note "ready: $(curl -fsS "http://127.0.0.1:$http_port/readyz")"

say "3. Create a tenant for a clinic and a one-time token good for three enrollments"
"$bin/wardctl" tenant create clinic-a --display-name "Riverside Family Clinic"
"$bin/wardctl" token create --tenant clinic-a --uses 3 --ttl 1h >"$work/token"
chmod 600 "$work/token"
note "the token is in a file readable only by its owner; the controller keeps only its hash"

say "4. Enroll three agents, each its own process with its own key and certificate"
for i in 1 2 3; do
	state="$work/agent-$i"
	"$bin/ward-agent" enroll --controller "$WARD_CONTROLLER" --token-file "$work/token" \
		--ca-file "$WARD_CA" --state-dir "$state" 2>>"$work/agent-$i.log"
	"$work/hosttree" "$work/host-$i"
	"$bin/ward-agent" run --state-dir "$state" --host-root "$work/host-$i" \
		>>"$work/agent-$i.log" 2>&1 &
	eval "agent_pid_$i=$!"
	pids+=("$!")
	id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["agent_id"])' \
		"$state/agent.json")
	eval "agent_id_$i=$id"
done
wait_for "three agents online" 30 expect_online 3
all_heartbeating() {
	for id in "$agent_id_1" "$agent_id_2" "$agent_id_3"; do
		[ "$(acked_sum "$id")" -ge 2 ] || return 1
	done
}
wait_for "heartbeats from all three" 30 all_heartbeating
"$bin/wardctl" agent list --tenant clinic-a

say "5. Stop agent-3; after three missed heartbeats the controller marks it offline"
kill "$agent_pid_3"
wait_for "agent-3 offline" 30 expect_online 2
"$bin/wardctl" agent list --tenant clinic-a

say "6. Crash the controller (kill -9) while agents 1 and 2 keep heartbeating"
before=$(acked_sum "$agent_id_1" "$agent_id_2")
kill -9 "$controller_pid"
{ wait "$controller_pid"; } 2>/dev/null || true
note "the controller had stored $before messages of agents 1 and 2; for 10 seconds the"
note "agents spool their heartbeats on disk and retry with backoff"
sleep 10

say "7. Restart the controller; the agents reconnect and resend their spools"
start_controller
spooled=$((before + 8))
wait_for "the spooled heartbeats to arrive" 90 acked_beyond "$spooled"
wait_for "two agents online" 30 expect_online 2
"$bin/wardctl" agent list --tenant clinic-a
for i in 1 2; do
	python3 - "$work/agent-$i.log" "$i" <<'PY'
import json, sys
last = None
for line in open(sys.argv[1]):
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    if rec.get("msg") == "connected to controller":
        last = rec
if last:
    print(f"   agent-{sys.argv[2]} reconnected; the controller held up to seq {last['seq']}, "
          f"the agent resent {last['resending']} spooled messages")
PY
done

say "8. Stop everything and check the controller's store: each heartbeat stored once"
kill "$agent_pid_1" "$agent_pid_2"
kill "$controller_pid"
{ wait "$controller_pid"; } 2>/dev/null || true
"$bin/ward-controller" messages --data-dir "$data" --tenant clinic-a
note "STORED equals ACKED SEQ and no number in the range is ABSENT: every heartbeat,"
note "including those spooled during the crash, was stored exactly once."

say "9. Evidence: export the clinic's bundle, verify it offline, then change one byte"
start_controller
"$bin/wardctl" evidence list --tenant clinic-a --limit 8
"$bin/wardctl" evidence export --tenant clinic-a -o "$work/clinic-a.tar.gz"
"$bin/wardctl" evidence verify "$work/clinic-a.tar.gz" --ca "$data/ca.pem"
mkdir "$work/bundle"
tar -xzf "$work/clinic-a.tar.gz" -C "$work/bundle"
note "the outer check needs no Ward tooling, only openssl:"
(cd "$work/bundle" &&
	openssl dgst -sha256 -verify evidence-pub.pem -signature manifest.sig manifest.json)
python3 - "$work/bundle/records.jsonl" <<'PY'
import sys
path = sys.argv[1]
lines = open(path, 'rb').read().split(b'\n')
i = lines[1].index(b'"subject":"') + len(b'"subject":"')
lines[1] = lines[1][:i] + bytes([lines[1][i] ^ 1]) + lines[1][i + 1:]
open(path, 'wb').write(b'\n'.join(lines))
print("   changed one byte in the subject of record 2")
PY
(cd "$work/bundle" && tar -czf "$work/tampered.tar.gz" README.txt manifest.json manifest.sig \
	evidence-pub.pem evidence-chain.pem checkpoints.jsonl witnesses.jsonl records.jsonl)
if "$bin/wardctl" evidence verify "$work/tampered.tar.gz" --ca "$data/ca.pem"; then
	echo "the changed bundle verified: tampering went unnoticed" >&2
	exit 1
fi
note "the verifier names the changed record and exits non-zero"

say "10. Drift and remediation: two more clinic servers with password SSH enabled"
"$bin/wardctl" token create --tenant clinic-a --uses 1 --ttl 1h >"$work/token-web"
"$bin/wardctl" token create --tenant clinic-a --uses 1 --ttl 1h --tier 3 >"$work/token-pacs"
chmod 600 "$work/token-web" "$work/token-pacs"
for name in web pacs; do
	"$work/hosttree" --password-ssh "$work/host-$name"
done
note "web (tier 1) and pacs (tier 3) each have: $(grep -m1 '^PasswordAuthentication' \
	"$work/host-web/etc/ssh/sshd_config")"
for name in web pacs; do
	"$bin/ward-agent" enroll --controller "$WARD_CONTROLLER" --token-file "$work/token-$name" \
		--ca-file "$WARD_CA" --state-dir "$work/agent-$name" 2>>"$work/agent-$name.log"
	"$bin/ward-agent" run --state-dir "$work/agent-$name" --host-root "$work/host-$name" \
		>>"$work/agent-$name.log" 2>&1 &
	pids+=("$!")
done
web=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["agent_id"])' \
	"$work/agent-web/agent.json")
pacs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["agent_id"])' \
	"$work/agent-pacs/agent.json")
note "each agent evaluates hipaa-v1 at start and reports SSH-002 failing; service state in"
note "these trees is simulated (no systemd here), and the agents say so in their logs"

wait_for "web's SSH-002 incident to resolve" 60 incident_in "$web" SSH-002 resolved
note "tier 1: the incident opened, RB-SSH-001 was signed and sent, the agent applied it,"
note "re-ran SSH-002, and the passing check resolved the incident:"
"$bin/wardctl" incident show "$(incident_field "$web" SSH-002 id)"
note "web's sshd_config now has: $(grep -m1 '^PasswordAuthentication' \
	"$work/host-web/etc/ssh/sshd_config")"

wait_for "pacs's SSH-002 incident to await approval" 60 \
	incident_in "$pacs" SSH-002 awaiting_approval
note "tier 3: the same drift waits for a person; nothing changed on pacs yet:"
"$bin/wardctl" incident list --agent "$pacs"
pacs_incident=$(incident_field "$pacs" SSH-002 id)
"$bin/wardctl" incident approve "$pacs_incident"
wait_for "pacs's SSH-002 incident to resolve" 60 incident_in "$pacs" SSH-002 resolved
"$bin/wardctl" incident show "$pacs_incident"
note "pacs's sshd_config now has: $(grep -m1 '^PasswordAuthentication' \
	"$work/host-pacs/etc/ssh/sshd_config"); the approval is recorded with the approver"

say "11. Discovery: a collector finds a clinic's devices and enrolls its server over SSH"
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null || ! command -v sshd >/dev/null ||
	! command -v nmap >/dev/null || ! command -v snmpd >/dev/null; then
	note "skipped: this step builds a clinic network out of namespaces (ip netns, bridges,"
	note "veth pairs) with sshd, snmpd, a DICOM listener and nmap, which needs root and the"
	note "packages 'make test-deps' installs. Run 'sudo make demo' to see it."
else
	note "a namespace clinic: a switch answering SNMP v3, a Linux server with only sshd, a CT"
	note "scanner (DICOM), an EHR web server, an HL7 engine, an excluded host and a quiet"
	note "device on a passive-only subnet. A real controller and a collector run beside them."
	note "The collector enrolls with a token made by 'wardctl token create --role collector':"
	note "only the operator grants the role; an agent of a plain token claiming it is refused."
	note "The operator sets the site with 'wardctl site set'; the collector scans (nmap,"
	note "ARP, SNMP, mDNS); the controller classifies every device, keeps clinical ones"
	note "waiting for a person, and has the collector install an agent on the Linux server"
	note "over SSH with a one-time token it minted for that address (about 90 seconds)..."
	(cd "$root/agent" && go test -count=1 -v -run '^TestClinicOnboarding$' \
		./internal/onboarding/ 2>&1) | awk '
		/onboarding_test.go:[0-9]+: wardctl device list:/ { show = 1; print "   wardctl device list:"; next }
		/onboarding_test.go:[0-9]+: evidence of the bootstrap:/ { show = 1; print "   wardctl evidence list --type device.bootstrapped:"; next }
		/^    [a-z_]+\.go:[0-9]+:/ { show = 0 }
		/^--- (PASS|FAIL)/ { show = 0; print "   " $0; next }
		show { sub(/^        /, "     "); print }'
	note "the switch is watched over SNMP without an agent, the clinical devices wait for"
	note "approval, the excluded host was never touched, and the server's new agent is online."
	note "The namespaces, the controller and the installed agent are gone again."
fi

say "Done. The throwaway installation in $work is removed now."
