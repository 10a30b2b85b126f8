#!/usr/bin/env bash
# Fetches Consul 1.8.7 (Debian bullseye's package; Debian 12 has none, and
# HashiCorp's site is not reachable from the test machines) once into the
# cache directory outside the repository, and prints the binary's path.
# The .deb is fetched with apt from a private sources list (the machine's
# own Debian mirror), extracted with dpkg -x, never installed.
set -euo pipefail

source "$(dirname "$0")/lib.sh"

CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/haproxide/consul-1.8.7
fetch_deb bullseye consul "$CACHE" usr/bin/consul version
echo "$CACHE/usr/bin/consul"
