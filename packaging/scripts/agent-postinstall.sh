#!/bin/sh
# ward-agent postinstall (deb postinst, rpm %post). Creates the state directory, reloads
# systemd and enables the agent on first install; starts it only when it is enrolled, so
# an installation never runs an unconfigured agent.
set -e
# Paths honour DPKG_ROOT, set by dpkg for installs into another root.

first_install=no
case "${1:-}" in
1) first_install=yes ;;                                   # rpm: first install
configure) [ -z "${2:-}" ] && first_install=yes ;;        # deb: no previous version
esac

state="${DPKG_ROOT:-}/var/lib/ward-agent"
install -d -m 0700 "$state"
chmod 0700 "$state"

if [ -d "${DPKG_ROOT:-}/run/systemd/system" ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if [ "$first_install" = yes ]; then
		systemctl enable ward-agent.service >/dev/null 2>&1 || true
	fi
	if [ -e "$state/cert.pem" ]; then
		systemctl restart ward-agent.service >/dev/null 2>&1 || true
	fi
fi
exit 0
