#!/usr/bin/env bash
# Fetches Consul 1.8.7 (Debian bullseye's package; Debian 12 has none, and
# HashiCorp's site is not reachable from the test machines) once into the
# cache directory outside the repository, and prints the binary's path.
# The .deb is fetched with apt from a private sources list (the machine's
# own Debian mirror), extracted with dpkg -x, never installed.
set -euo pipefail

source "$(dirname "$0")/lib.sh"

CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/haproxide/consul-1.8.7
BINARY=$CACHE/usr/bin/consul
if [ -x "$BINARY" ] && "$BINARY" version >/dev/null 2>&1; then
    echo "$BINARY"
    exit 0
fi

APT=$CACHE/apt
private_apt "$APT" deb bullseye
echo "== fetching consul (Debian bullseye's 1.8.7 package)" >&2
{
    apt-get "${APT_OPTIONS[@]}" -qq update &&
        (cd "$APT" && apt-get "${APT_OPTIONS[@]}" -qq download consul)
} >"$CACHE/apt.log" 2>&1 || { cat "$CACHE/apt.log" >&2; echo "consul did not download" >&2; exit 1; }
deb=$(ls "$APT"/consul_*.deb | head -1)
dpkg -x "$deb" "$CACHE"
"$BINARY" version | head -1 >&2
echo "$BINARY"
