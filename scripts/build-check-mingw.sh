#!/bin/sh
# Cross-builds Check for x86_64-w64-mingw32 (static, no fork, no subunit)
# from the pristine upstream tarball in Debian's source package, into
# _build/win-deps/x86_64-w64-mingw32.  Later runs reuse the prefix.
# Prints nothing on success but the prefix's pkg-config directory.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
deps=$top/_build/win-deps
prefix=$deps/x86_64-w64-mingw32
if [ -f "$prefix/lib/pkgconfig/check.pc" ] && [ -f "$prefix/lib/libcheck.a" ]; then
  echo "$prefix/lib/pkgconfig"
  exit 0
fi
rm -rf "$deps/src"
mkdir -p "$deps/src"
cd "$deps/src"
# The Debian-patched tree would give a check.pc naming -lcheck_pic, which
# only Debian's own build installs: use the orig tarball.
apt-get source -q --download-only -o APT::Sandbox::User=root check >&2
tar xzf check_*.orig.tar.gz
mkdir build
cd build
../check-*/configure -q --host=x86_64-w64-mingw32 --prefix="$prefix" \
  --disable-shared --enable-static --disable-subunit \
  --disable-build-docs --disable-timeout-tests \
  PKG_CONFIG_LIBDIR="$prefix/lib/pkgconfig" >&2
make -j"$(nproc)" >/dev/null
make install >/dev/null
echo "$prefix/lib/pkgconfig"
