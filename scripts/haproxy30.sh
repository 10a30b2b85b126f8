#!/usr/bin/env bash
# Builds HAProxy 3.0.11 from Debian trixie's source tarball, once, into the
# cache directory outside the repository, and prints the binary's path.
# Debian 12 ships only 2.6; the tests that need 2.7+ behaviour (the master
# CLI's synchronous `reload` answer) and the runs of the integration tests
# on a newer HAProxy use this binary through HAPROXY_BIN.
#
# The tarball is fetched with apt from a private sources list (the machine's
# own Debian mirror, trixie's deb-src), so the system's apt state is not
# touched. A second run reuses the binary.
set -euo pipefail

source "$(dirname "$0")/lib.sh"

VERSION=3.0.11
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/haproxide/haproxy-$VERSION
BINARY=$CACHE/haproxy
if [ -x "$BINARY" ] && "$BINARY" -v >/dev/null 2>&1; then
    echo "$BINARY"
    exit 0
fi

need_packages build-essential dpkg-dev
mkdir -p "$CACHE"
APT=$CACHE/apt
private_apt "$APT" deb-src trixie
mkdir -p "$APT/src"
tarball=$APT/src/haproxy_$VERSION.orig.tar.gz
if [ ! -s "$tarball" ]; then
    echo "== fetching haproxy_$VERSION.orig.tar.gz (Debian trixie source)" >&2
    # The .dsc and debian.tar.xz may be gone after a security update (apt
    # then reports 404s); the upstream tarball is all the build needs, so
    # only it must arrive, and apt's log is shown only when it did not.
    {
        apt-get "${APT_OPTIONS[@]}" -qq update &&
            (cd "$APT/src" && apt-get "${APT_OPTIONS[@]}" -qq source --download-only haproxy)
    } >"$CACHE/apt.log" 2>&1 || true
    if [ ! -s "$tarball" ]; then
        cat "$CACHE/apt.log" >&2
        echo "haproxy_$VERSION.orig.tar.gz did not download" >&2
        exit 1
    fi
fi

echo "== building HAProxy $VERSION (about 75 s on 2 cores)" >&2
build=$(mktemp -d "${TMPDIR:-/tmp}/haproxy-build.XXXXXX")
trap 'rm -rf "$build"' EXIT
tar xzf "$tarball" -C "$build"
if ! make -C "$build/haproxy-$VERSION" -j"$(nproc)" TARGET=linux-glibc USE_PROMEX=1 USE_PCRE2= USE_OPENSSL= \
    >"$CACHE/build.log" 2>&1; then
    tail -30 "$CACHE/build.log" >&2
    echo "the HAProxy $VERSION build failed; the whole log is $CACHE/build.log" >&2
    exit 1
fi
install -m 0755 "$build/haproxy-$VERSION/haproxy" "$BINARY.new"
mv "$BINARY.new" "$BINARY"
"$BINARY" -v | head -1 >&2
echo "$BINARY"
