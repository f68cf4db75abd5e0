#!/bin/sh
# ward-agent preremove (deb prerm, rpm %preun): stops and disables the agent when the
# package is removed, not when it is upgraded.
set -e
# Paths honour DPKG_ROOT, set by dpkg for installs into another root.

case "${1:-}" in
remove | 0)
	if [ -d "${DPKG_ROOT:-}/run/systemd/system" ]; then
		systemctl disable --now ward-agent.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
