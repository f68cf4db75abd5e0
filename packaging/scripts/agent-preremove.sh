#!/bin/sh
# ward-agent preremove (deb prerm, rpm %preun): stops and disables the agent when the
# package is removed, not when it is upgraded.
set -e

case "${1:-}" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now ward-agent.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
