#!/bin/sh
# ward-controller postremove (deb postrm, rpm %postun).
set -e
# Paths honour DPKG_ROOT, set by dpkg for installs into another root.

if [ -d "${DPKG_ROOT:-}/run/systemd/system" ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
