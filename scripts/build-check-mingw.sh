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
# Check's configure summary and its sources' many mingw warnings go to a
# log, shown only if the build fails.
log=$deps/build.log
failed() {
  tail -40 "$log" >&2
  echo "build-check-mingw.sh: building Check failed, see $log" >&2
  exit 1
}
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
  PKG_CONFIG_LIBDIR="$prefix/lib/pkgconfig" >"$log" 2>&1 || failed
{ make -j"$(nproc)" && make install; } >>"$log" 2>&1 || failed
echo "$prefix/lib/pkgconfig"
