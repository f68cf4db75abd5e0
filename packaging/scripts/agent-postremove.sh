#!/bin/sh
# ward-agent postremove (deb postrm, rpm %postun). A purge also deletes the agent's
# identity and spool; a plain removal keeps them for a reinstall.
set -e

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "${1:-}" = purge ]; then
	rm -rf /var/lib/ward-agent
fi
exit 0
