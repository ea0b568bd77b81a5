#!/bin/sh
# Installs every Debian package npipe's build, tests and benchmarks need,
# and node for the workflow check (Debian bookworm, as root).  Adds a
# deb-src entry for Check's source.
set -eu
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
if ! grep -Rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ &&
   ! grep -qs '^deb-src' /etc/apt/sources.list; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
      $SUDO tee /etc/apt/sources.list.d/debian-src.sources >/dev/null
  else
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list |
      $SUDO tee /etc/apt/sources.list.d/debian-src.list >/dev/null
  fi
fi
# node and npm run scripts/check-workflow.sh; a machine that has them
# already (NodeSource's nodejs, which conflicts with Debian's npm) keeps
# its own.
node_pkgs="nodejs npm"
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
  node_pkgs=""
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
  build-essential autoconf automake libtool pkg-config check \
  mingw-w64 wine wine64 mandoc valgrind libuv1-dev socat python3 clang \
  ca-certificates dpkg-dev $node_pkgs
