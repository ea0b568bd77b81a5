#!/bin/sh
# Quick start: installs the Debian packages, builds npipe natively, and
# shows a pipe-server and a pipe-client exchanging a message.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/install-deps.sh
[ -x configure ] || { mkdir -p m4 && autoreconf -fi; }
mkdir -p _build/native
(cd _build/native && [ -f Makefile ] || ../../configure -q)
make -C _build/native -j"$(nproc)" >/dev/null
echo "built: _build/native/.libs/libnpipe.so"
if [ -x _build/native/tools/pipe-server ]; then
  scripts/demo.sh _build/native
fi
