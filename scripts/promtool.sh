#!/usr/bin/env bash
# Fetches Debian 12's prometheus package (2.42) once into the cache
# directory outside the repository, and prints promtool's path. Tests check
# every /metrics exposition with `promtool check metrics`, and the
# prometheus sink's tests scrape with the server beside it
# (`usr/bin/prometheus`). The package is extracted with dpkg -x, never
# installed (no service starts).
set -euo pipefail

source "$(dirname "$0")/lib.sh"

CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/haproxide/prometheus-2.42
fetch_deb bookworm prometheus "$CACHE" usr/bin/promtool --version
echo "$CACHE/usr/bin/promtool"
