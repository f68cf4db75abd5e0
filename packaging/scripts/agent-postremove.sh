#!/bin/sh
# ward-agent postremove (deb postrm, rpm %postun). A purge also deletes the agent's
# identity and spool; a plain removal keeps them for a reinstall.
set -e
# Paths honour DPKG_ROOT, set by dpkg for installs into another root.

if [ -d "${DPKG_ROOT:-}/run/systemd/system" ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "${1:-}" = purge ]; then
	rm -rf "${DPKG_ROOT:-}/var/lib/ward-agent"
fi
exit 0
