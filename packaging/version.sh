#!/bin/sh
# Prints the package version: the release tag without its "v" (v1.2.0 gives 1.2.0), or
# 0.0.0~git.<commit> between releases, which sorts before the next release in dpkg and rpm.
set -eu
if tag=$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null); then
	echo "${tag#v}"
elif commit=$(git rev-parse --short HEAD 2>/dev/null); then
	echo "0.0.0~git.$commit"
else
	echo "0.0.0"
fi
