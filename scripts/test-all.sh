#!/bin/sh
# Builds npipe and runs every test, in parts:
#   native    POSIX backend: make check, then make distcheck
#   windows   the mingw-w64 build under Wine (IOCP backend)
#   memcheck  the native suites under ASan + UBSan and under valgrind
#             memcheck, and the threaded ones under ThreadSanitizer
#             (scripts/test-memcheck.sh)
#   fuzz      the libFuzzer harnesses, a bounded run each (scripts/fuzz.sh)
# Usage: scripts/test-all.sh [PART...]   (default: all four)
# Prints each part's time, and a summary at the end.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)
what=${*:-native windows memcheck fuzz}

# Check's closing lines live only in the per-test logs.
show_logs() {
  for f in "$1"/tests/*.log; do
    [ -f "$f" ] || continue
    printf '%s\n' "--- ${f#"$top"/}"
    tr -d '\r' <"$f" | grep -E '^(npipe tests:|Running suite|[0-9]+%: Checks)|^(PASS|FAIL|SKIP|ERROR):' || true
  done
}

run_check() {
  dir=$1
  shift
  if ! make -C "$dir" -j"$jobs" check "$@"; then
    tr -d '\r' <"$dir/test-suite.log" || true
    show_logs "$dir"
    return 1
  fi
  show_logs "$dir"
}

bootstrap() {
  [ -x configure ] || { mkdir -p m4 && autoreconf -fi; }
}

# Benchmarks are not tests and nothing here is timed: one short round of
# every case only shows that the programs build without warnings, run and
# measure every case (one that fails makes its program exit non-zero).
bench_smoke() {
  echo "=== bench smoke run ($1)"
  make -C "$1" -j"$jobs" bench BENCH_FLAGS="--quick --rounds 1" \
    >"$1/bench-smoke.log" 2>&1 || { tail -30 "$1/bench-smoke.log"; return 1; }
}

native() {
  echo "=== native build and tests (POSIX backend)"
  mkdir -p _build/native
  (cd _build/native && [ -f Makefile ] || ../../configure -q --enable-werror)
  make -C _build/native -j"$jobs" >/dev/null
  run_check _build/native
  bench_smoke _build/native
  echo "=== make distcheck"
  make -C _build/native -j"$jobs" distcheck >_build/distcheck.log 2>&1 ||
    { tail -50 _build/distcheck.log; return 1; }
  grep -E 'archives ready|\.tar\.gz$' _build/distcheck.log | head -3
}

windows() {
  echo "=== mingw-w64 build, tests under Wine (IOCP backend)"
  pc=$(scripts/build-check-mingw.sh)
  . scripts/wine-env.sh
  trap np_wine_stop EXIT
  np_wine_start
  mkdir -p _build/win
  (cd _build/win && [ -f Makefile ] ||
    ../../configure -q --host=x86_64-w64-mingw32 --enable-werror \
      PKG_CONFIG_LIBDIR="$pc")
  make -C _build/win -j"$jobs" >/dev/null
  run_check _build/win
  bench_smoke _build/win
  np_wine_stop
  trap - EXIT
}

memcheck() {
  scripts/test-memcheck.sh asan valgrind tsan
}

fuzz() {
  scripts/fuzz.sh
}

for w in $what; do
  case $w in
  native | windows | memcheck | fuzz) ;;
  *)
    echo "test-all.sh: unknown part '$w' (native, windows, memcheck, fuzz)" >&2
    exit 2
    ;;
  esac
done
bootstrap
times=""
for w in $what; do
  part_start=$(date +%s)
  $w
  took=$(($(date +%s) - part_start))
  echo "=== $w: passed in $took s"
  times="$times $w=${took}s"
done
echo "=== all tests passed:$times"
