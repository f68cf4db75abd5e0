#!/bin/sh
# ward-controller postinstall (deb postinst, rpm %post). Creates the ward-controller user
# and its data directory, reloads systemd and enables the controller on first install;
# restarts it on upgrade only when it was initialised, never starts an unconfigured one.
set -e
# Paths honour DPKG_ROOT, set by dpkg for installs into another root.

first_install=no
case "${1:-}" in
1) first_install=yes ;;
configure) [ -z "${2:-}" ] && first_install=yes ;;
esac

if ! getent passwd ward-controller >/dev/null 2>&1; then
	if command -v systemd-sysusers >/dev/null 2>&1; then
		systemd-sysusers /usr/lib/sysusers.d/ward-controller.conf
	else
		useradd --system --user-group --home-dir /var/lib/ward-controller \
			--shell /usr/sbin/nologin --comment "Ward controller" ward-controller
	fi
fi
data="${DPKG_ROOT:-}/var/lib/ward-controller"
install -d -m 0700 -o ward-controller -g ward-controller "$data"

if [ -d "${DPKG_ROOT:-}/run/systemd/system" ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if [ "$first_install" = yes ]; then
		systemctl enable ward-controller.service >/dev/null 2>&1 || true
	fi
	if [ -e "$data/install.json" ]; then
		systemctl restart ward-controller.service >/dev/null 2>&1 || true
	fi
fi
exit 0
