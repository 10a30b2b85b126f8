#!/usr/bin/env bash
# Builds tansu 0.6.0, a Kafka-protocol broker written in Rust, once into the
# cache directory outside the repository, and prints the binary's path. The
# logs tests produce to it and read back what arrived. Built with the
# `dynostore` and `libsql` features: the tests keep topics in SQLite
# (`--storage-engine sqlite://tansu.db`), which survives the broker's stop
# and start in the Kafka outage test (memory storage would forget them).
# 10 to 16 minutes on 2 cores, 1.7 GB of memory at the peak; the build
# directory is removed afterwards.
set -euo pipefail

source "$(dirname "$0")/lib.sh"

VERSION=0.6.0
FEATURES=dynostore,libsql
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/haproxide/tansu-$VERSION-${FEATURES/,/-}
BINARY=$CACHE/bin/tansu
if [ -x "$BINARY" ] && "$BINARY" --version >/dev/null 2>&1; then
    echo "$BINARY"
    exit 0
fi

need_cargo
mkdir -p "$CACHE"
build=$(mktemp -d "${TMPDIR:-/tmp}/tansu-build.XXXXXX")
trap 'rm -rf "$build"' EXIT
echo "== building tansu $VERSION with $FEATURES (about 15 minutes on 2 cores)" >&2
if ! CARGO_TARGET_DIR=$build/target cargo install tansu --version "=$VERSION" --locked \
    --features "$FEATURES" --root "$build/root" >"$CACHE/build.log" 2>&1; then
    tail -30 "$CACHE/build.log" >&2
    echo "the tansu $VERSION build failed; the whole log is $CACHE/build.log" >&2
    exit 1
fi
mkdir -p "$CACHE/bin"
install -m 0755 "$build/root/bin/tansu" "$BINARY.new"
mv "$BINARY.new" "$BINARY"
"$BINARY" --version | head -1 >&2
echo "$BINARY"
