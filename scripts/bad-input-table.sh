#!/bin/sh
# Prints the bad-input table (doc/bad-inputs.md) as Markdown, from a run of
# tests/check_badinput: every row is asserted by the suite before it is
# printed, so the table cannot drift from the library.
#
#   scripts/bad-input-table.sh [WIN_BUILD_DIR]
#
# Builds and runs the native suite in $NATIVE_BUILD (default
# _build/bad-input-native, configured on first use).  With WIN_BUILD_DIR, a
# configured mingw build directory, it also builds check_badinput.exe
# there, runs it under Wine ($WINEPREFIX if set, else the project's
# prefix) and adds the Windows column.  The row counts go to stderr.
# Exits non-zero if a build fails or a row fails on either backend.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
native=${NATIVE_BUILD:-$top/_build/bad-input-native}
win=${1:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The rows between the suite's markers.
extract() {
  sed -n '/^<!-- bad-input table:/,/^<!-- end of bad-input table -->/p' "$1" |
    grep '^|' || true
}

if [ ! -f "$native/Makefile" ]; then
  mkdir -p "$native"
  (cd "$native" && "$top/configure" -q --enable-werror) >&2
fi
make -C "$native" -s tests/check_badinput >&2
status=0
(cd "$native" && ./tests/check_badinput) >"$tmp/posix.out" 2>&1 || status=1
extract "$tmp/posix.out" >"$tmp/posix"
rows_posix=$(wc -l <"$tmp/posix")

if [ -z "$win" ]; then
  echo "| input | call | result (POSIX, epoll) |"
  echo "|---|---|---|"
  cat "$tmp/posix"
  echo "rows tried: POSIX $rows_posix" >&2
  [ "$status" -eq 0 ] || grep -F 'FAILED' "$tmp/posix" >&2 || true
  exit "$status"
fi

make -C "$win" -s tests/check_badinput.exe >&2
saved_prefix=${WINEPREFIX:-}
# shellcheck source=scripts/wine-env.sh
. "$top/scripts/wine-env.sh"
[ -z "$saved_prefix" ] || WINEPREFIX=$saved_prefix
np_wine_start
(cd "$win" && wine ./tests/check_badinput.exe) >"$tmp/win.out" 2>&1 ||
  status=1
np_wine_stop
extract "$tmp/win.out" >"$tmp/win"
rows_win=$(wc -l <"$tmp/win")
if [ "$rows_posix" -ne "$rows_win" ]; then
  echo "bad-input-table.sh: $rows_posix POSIX rows but $rows_win Windows" \
    "rows: are both builds of the same source?" >&2
  exit 1
fi

# Both runs print the same rows in the same order: keep the POSIX row and
# append the Windows result cell (the last cell of the Windows row).
echo "| input | call | POSIX (epoll) | Windows (IOCP) |"
echo "|---|---|---|---|"
awk 'NR == FNR {
       # Cells are split on " | "; a "\|" inside a cell has no spaces.
       n = split($0, c, / \| /)
       cell[FNR] = c[n]
       next
     }
     { print $0 " " cell[FNR] }' "$tmp/win" "$tmp/posix"
echo "rows tried: POSIX $rows_posix, Windows $rows_win" >&2
grep -hF 'FAILED' "$tmp/posix" "$tmp/win" >&2 || true
exit "$status"
