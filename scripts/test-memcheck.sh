#!/bin/sh
# Runs the native test suite under the memory checkers:
#   asan      configure _build/asan with --enable-sanitizers
#             (-fsanitize=address,undefined, leak checking on) and run
#             make check: every test runs in its own forked process, so a
#             leak or an error fails that test.
#   valgrind  build _build/valgrind normally and run each test program
#             under valgrind memcheck, without fork (CK_FORK=no) so that
#             valgrind sees the tests themselves: no error and no definite
#             or indirect leak allowed.
#   tsan      configure _build/tsan with -fsanitize=thread and run the
#             suites whose tests run threads (many threads on one poller,
#             clients on threads of their own): no data race, no lock
#             order inversion allowed.
# Usage: scripts/test-memcheck.sh [asan] [valgrind] [tsan]
#        (default: all three)
# Build directories can be moved with NP_ASAN_DIR, NP_VALGRIND_DIR and
# NP_TSAN_DIR.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
what=${*:-asan valgrind tsan}
asan_dir=${NP_ASAN_DIR:-_build/asan}
tsan_dir=${NP_TSAN_DIR:-_build/tsan}
# The suites with threads of their own.
tsan_tests="tests/check_threads tests/check_pipe tests/check_badinput"

vg_dir=${NP_VALGRIND_DIR:-_build/valgrind}
# One test program under valgrind: far slower than natively.
vg_timeout=${NP_VALGRIND_TIMEOUT:-1800}

configure_in() {
  dir=$1
  shift
  [ -x configure ] || { mkdir -p m4 && autoreconf -fi; }
  mkdir -p "$dir"
  [ -f "$dir/Makefile" ] ||
    (cd "$dir" && "$top/configure" -q --enable-werror "$@")
  make -C "$dir" -j2 >/dev/null
}

# The test programs this build defines (check_PROGRAMS, with EXEEXT).
test_programs() {
  printf 'np-print-tests:\n\t@echo $(check_PROGRAMS)\n' |
    make -s -C "$1" -f Makefile -f - np-print-tests
}

asan() {
  echo "=== AddressSanitizer + UBSan: make check in $asan_dir"
  configure_in "$asan_dir" --enable-sanitizers
  # shellcheck disable=SC2046
  make -C "$asan_dir" -j2 $(test_programs "$asan_dir") >/dev/null
  status=0
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    make -s -C "$asan_dir" -j2 check >"$asan_dir/check.out" 2>&1 || status=1
  # One line per test, with Check's count for the suites.
  for log in "$asan_dir"/tests/*.log "$asan_dir"/tests/tools/*.log; do
    [ -f "$log" ] || continue
    t=${log#"$asan_dir"/}
    t=${t%.log}
    result=$(sed -n 's/^:test-result: //p' "${log%.log}.trs" 2>/dev/null |
      head -1)
    echo "${result:-?}: $t $(grep -h -E '^[0-9]+%: Checks' "$log" || true)"
  done
  [ "$status" -eq 0 ] || { cat "$asan_dir/test-suite.log"; return 1; }
}

valgrind_run() {
  echo "=== valgrind memcheck, CK_FORK=no, in $vg_dir"
  command -v valgrind >/dev/null ||
    { echo "valgrind not installed" >&2; return 1; }
  configure_in "$vg_dir"
  progs=$(test_programs "$vg_dir")
  make -C "$vg_dir" -j2 $progs >/dev/null
  failed=0
  for t in $progs; do
    log="$vg_dir/$t.valgrind.log"
    start=$(date +%s)
    # NPT_VALGRIND=1 lets a test scale its load down (valgrind runs the
    # threads one at a time, tens of times slower).
    if (cd "$vg_dir" && CK_FORK=no CK_VERBOSITY=normal NPT_VALGRIND=1 \
        timeout --kill-after=10 "$vg_timeout" \
        ./libtool --mode=execute valgrind -q --leak-check=full \
          --errors-for-leak-kinds=definite,indirect \
          --show-leak-kinds=definite,indirect --error-exitcode=1 \
          "./$t") >"$log" 2>&1; then
      status=PASS
    else
      status=FAIL
      failed=1
    fi
    summary=$(grep -E '^[0-9]+%: Checks' "$log" || true)
    echo "$status: $t ($(($(date +%s) - start)) s) $summary"
    [ "$status" = PASS ] || tail -40 "$log"
  done
  return $failed
}

tsan() {
  echo "=== ThreadSanitizer: $tsan_tests in $tsan_dir"
  configure_in "$tsan_dir" CFLAGS="-g -O1 -fsanitize=thread" \
    LDFLAGS="-fsanitize=thread"
  # shellcheck disable=SC2086
  make -C "$tsan_dir" -j2 $tsan_tests >/dev/null
  status=0
  # shellcheck disable=SC2086
  TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1} \
    make -s -C "$tsan_dir" check TESTS="$tsan_tests" \
    >"$tsan_dir/check.out" 2>&1 || status=1
  for t in $tsan_tests; do
    log="$tsan_dir/$t.log"
    echo "$(sed -n 's/^:test-result: //p' "$tsan_dir/$t.trs" 2>/dev/null |
      head -1): $t $(grep -h -E '^[0-9]+%: Checks' "$log" 2>/dev/null || true)"
  done
  [ "$status" -eq 0 ] || { cat "$tsan_dir/test-suite.log"; return 1; }
}

# Every part runs, even after one failed, so that one run shows all.
failed_parts=""
for w in $what; do
  part_start=$(date +%s)
  case $w in
  asan) asan || failed_parts="$failed_parts $w" ;;
  valgrind) valgrind_run || failed_parts="$failed_parts $w" ;;
  tsan) tsan || failed_parts="$failed_parts $w" ;;
  *) echo "usage: $0 [asan] [valgrind] [tsan]" >&2; exit 2 ;;
  esac
  echo "=== $w: $(($(date +%s) - part_start)) s"
done
[ -z "$failed_parts" ] || { echo "=== memcheck FAILED:$failed_parts"; exit 1; }
echo "=== memcheck passed: $what"
