#!/usr/bin/env bash
# Installs moto_server (PyPI `moto[server]` 5.2.5, the AWS API stand-in the
# backends tests ask for Auto Scaling groups and EC2 instances) once into a
# virtualenv in the cache directory outside the repository, and prints its
# path. The tests start it on loopback themselves.
set -euo pipefail

VERSION=5.2.5
VENV=${XDG_CACHE_HOME:-$HOME/.cache}/haproxide/moto-$VERSION
if ! [ -x "$VENV/bin/moto_server" ] || ! "$VENV/bin/python" -c 'import moto' >/dev/null 2>&1; then
    echo "== installing moto[server] $VERSION into $VENV (about a minute)" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$VERSION" >&2
fi
echo "$VENV/bin/moto_server"
