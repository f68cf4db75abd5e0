#!/bin/sh
# ward-controller preremove (deb prerm, rpm %preun): stops and disables the controller
# when the package is removed, not when it is upgraded. The data directory (CA, policy
# key, store) is never deleted by the package, not even by a purge.
set -e
# Paths honour DPKG_ROOT, set by dpkg for installs into another root.

case "${1:-}" in
remove | 0)
	if [ -d "${DPKG_ROOT:-}/run/systemd/system" ]; then
		systemctl disable --now ward-controller.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
