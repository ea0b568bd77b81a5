#!/bin/sh
# Runs the benchmark suites (native Linux, and the Windows build under
# Wine) and writes their tables to bench/RESULTS.md, replacing the
# previous run there, with date, commit and machine.  Builds in
# _build/native-bench and _build/win-bench (configured on first use).
#
#   scripts/bench.sh              full run, CPUs kept awake (the default)
#   scripts/bench.sh --idle       full run without spinners
#   scripts/bench.sh --both       both states, one after the other
#   scripts/bench.sh --quick      smoke run (~20 ms rounds, 1,000 ends)
#   --native-only / --wine-only   one suite; --rounds N, --seconds S pass on
#   --no-results                  print the tables, leave RESULTS.md alone
#
# Run it on a quiet machine: every figure is compared with a baseline
# measured in the same round, but a busy machine still widens the spread.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cmdline="$*"
results=$top/bench/RESULTS.md
states=awake native=yes wine=yes write=yes args='' only=''
while [ $# -gt 0 ]; do
  case $1 in
    --idle) states=idle ;;
    --both) states="awake idle" ;;
    --spin) states=awake ;;
    --quick) args="$args --quick" ;;
    --native-only) wine=no ;;
    --wine-only) native=no ;;
    --no-results) write=no ;;
    --rounds|--seconds|--ends|--only)
      [ $# -ge 2 ] || { echo "bench.sh: $1 needs a value" >&2; exit 2; }
      if [ "$1" = --only ]; then only=$2; else args="$args $1 $2"; fi
      shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

out=$(mktemp)
spin_pids=
cleanup() {
  stop_spin
  rm -f "$out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Busy loops at the lowest priority keep every vCPU out of its idle state
# (a wake-up from it costs 20-45 us on these VMs) and take no CPU time
# from the benchmark.  On the host, so that they work for Wine too.
start_spin() {
  i=0
  while [ "$i" -lt "$(nproc)" ]; do
    if command -v chrt >/dev/null 2>&1; then
      chrt -i 0 sh -c 'while :; do :; done' &
    else
      nice -n 19 sh -c 'while :; do :; done' &
    fi
    spin_pids="$spin_pids $!"
    i=$((i + 1))
  done
}
stop_spin() {
  for p in $spin_pids; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  spin_pids=
}

build_native() {
  mkdir -p "$top/_build/native-bench"
  cd "$top/_build/native-bench"
  [ -f Makefile ] || ../../configure -q
  make -j2 >/dev/null
  make bench-build >/dev/null
}

build_wine() {
  pc=$("$top/scripts/build-check-mingw.sh")
  mkdir -p "$top/_build/win-bench"
  cd "$top/_build/win-bench"
  [ -f Makefile ] ||
    ../../configure -q --host=x86_64-w64-mingw32 PKG_CONFIG_LIBDIR="$pc"
  make -j2 >/dev/null
  make bench-build >/dev/null
}

# Runs one program, tables to $out (headings one level down), progress
# to a log next to it.  A failing program is reported, not fatal.
run_prog() {
  log=$1.log
  shift
  # shellcheck disable=SC2016 # the quotes are part of the message
  echo "bench.sh: $* $args${only:+ --only '$only'}" >&2
  # shellcheck disable=SC2086
  if "$@" $args ${only:+--only "$only"} >"$out.prog" 2>"$log"; then
    status=ok
  else
    status="failed (exit $?; see $log)"
    failures=$((failures + 1))
  fi
  {
    sed -e 's/^### /#### /' -e 's/^## /### /' "$out.prog"
    printf '\nProgram status: %s\n' "$status"
  } >>"$out"
  rm -f "$out.prog"
}

run_native() {
  build_native
  cd "$top/_build/native-bench"
  run_prog bench/base-unix ./bench/base-unix
  run_prog bench/bench-threads ./bench/bench-threads
  if [ -x bench/base-uv ]; then
    run_prog bench/base-uv ./bench/base-uv
  else
    printf '\n### Linux: npipe vs libuv\n\n%s\n' \
      "libuv was not found at configure time: skipped." >>"$out"
  fi
}

run_wine() {
  # libtool's wrapper records Wine paths at link time: prefix first.
  cd "$top"
  # shellcheck disable=SC1091
  . "$top/scripts/wine-env.sh"
  build_wine
  np_wine_start
  cd "$top/_build/win-bench"
  run_prog bench/base-win wine bench/base-win.exe
  run_prog bench/bench-threads wine bench/bench-threads.exe
  np_wine_stop
}

machine() {
  commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
  # The results file is this script's own output: not a change.
  if [ -n "$(git -C "$top" status --porcelain -- . ':!bench/RESULTS.md' \
    2>/dev/null)" ]; then
    commit="$commit (with uncommitted changes)"
  fi
  model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- commit: $commit"
  echo "- machine: $(nproc) CPUs, $model, kernel $(uname -r)"
  echo "- wine: $(wine --version 2>/dev/null || echo none);" \
       "libuv: $(pkg-config --modversion libuv 2>/dev/null || echo none)"
  echo "- load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- command: scripts/bench.sh $cmdline"
  case " $args " in
    *" --quick "* | *" --rounds "[1-4]" "*)
      printf '\n**Smoke run (--quick or fewer than 5 rounds): the figures '
      printf 'show that every case runs, they are not a measurement.**\n' ;;
  esac
}

failures=0
machine >"$out.head"
for state in $states; do
  printf '\n## State: %s\n\n' "$state" >>"$out"
  if [ "$state" = awake ]; then
    echo "Both CPUs kept busy by SCHED_IDLE spinners on the host." >>"$out"
    start_spin
  else
    echo "No spinners: idle vCPUs pay their wake-up latency." >>"$out"
  fi
  [ "$native" = no ] || run_native
  [ "$wine" = no ] || run_wine
  stop_spin
done

if [ "$write" = yes ]; then
  marker='<!-- scripts/bench.sh writes everything below this line -->'
  {
    if grep -qF "$marker" "$results" 2>/dev/null; then
      awk -v m="$marker" '{ print } $0 == m { exit }' "$results"
    else
      printf '# npipe benchmark results\n\n%s\n' "$marker"
    fi
    printf '\n# Latest run\n\n'
    cat "$out.head" "$out"
  } >"$results.new"
  mv "$results.new" "$results"
  echo "bench.sh: wrote $results" >&2
else
  cat "$out.head" "$out"
fi
rm -f "$out.head"
[ "$failures" -eq 0 ]
