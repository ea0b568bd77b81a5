#!/bin/sh
# Quick start: installs the Debian packages, builds npipe natively and
# for Windows (mingw-w64), and shows a pipe-server and a pipe-client
# exchanging a message on each: natively, then under Wine.
# Usage: scripts/quickstart.sh [--native-only]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)
scripts/install-deps.sh
[ -x configure ] || { mkdir -p m4 && autoreconf -fi; }

mkdir -p _build/native
(cd _build/native && [ -f Makefile ] || ../../configure -q)
make -C _build/native -j"$jobs" >/dev/null
echo "=== built natively: _build/native (library, pipe-server, pipe-client)"
scripts/demo.sh _build/native
[ "${1:-}" = --native-only ] && exit 0

# The same configuration as scripts/test-all.sh, so that build is reused.
pc=$(scripts/build-check-mingw.sh)
mkdir -p _build/win
(cd _build/win && [ -f Makefile ] ||
  ../../configure -q --host=x86_64-w64-mingw32 PKG_CONFIG_LIBDIR="$pc")
make -C _build/win -j"$jobs" >/dev/null
echo "=== built for Windows: _build/win (pipe-server.exe, pipe-client.exe)"
. scripts/wine-env.sh
trap np_wine_stop EXIT
np_wine_start
scripts/demo.sh _build/win
