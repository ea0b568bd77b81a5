#!/bin/sh
# Builds the libFuzzer harnesses in tests/fuzz/ with clang (ASan + UBSan,
# leak checking on) and runs each for a bounded number of inputs: first
# every file of its seed corpus (fuzz-X: tests/fuzz/corpus-X/, which holds
# the regression inputs), then new ones.  Prints each harness's count.
#   fuzz-address  address parsing (src/common/address.c)
#   fuzz-args     the tools' command lines (tools/args.c and both tools'
#                 parse())
#   fuzz-message  message mode framing over SOCK_SEQPACKET, through the
#                 public API against foreign and npipe peers
# Usage: scripts/fuzz.sh [RUNS]
#   RUNS overrides every harness's input count (defaults below; the whole
#   script takes about two minutes on two cores).  NP_FUZZ_SECONDS caps
#   each harness's time (default 60).  Work files go to _build/fuzz; a
#   crash leaves its input there as NAME-crash-* and fails the script.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
runs=${1:-}
max_time=${NP_FUZZ_SECONDS:-60}
jobs=$(nproc 2>/dev/null || echo 2)
out=_build/fuzz
cfg=$out/config
obj=$out/obj

command -v clang >/dev/null || { echo "fuzz.sh: clang is needed" >&2; exit 2; }
[ -x configure ] || { mkdir -p m4 && autoreconf -fi; }
# Only config.h and the source lists are taken from this configuration;
# everything is compiled below with the fuzzing flags.
mkdir -p "$cfg" "$obj"
if [ ! -f "$cfg/Makefile" ] || [ configure -nt "$cfg/config.status" ]; then
  (cd "$cfg" && CC=clang "$top/configure" -q)
fi

# A make variable of that configuration, .c files only.
sources() {
  printf 'np-print:\n\t@echo $(%s)\n' "$1" |
    make -s -C "$cfg" -f Makefile -f - np-print | tr ' ' '\n' | grep '\.c$'
}

san="-fsanitize=address,undefined -fno-sanitize-recover=all"
cflags="-g -O1 -fno-omit-frame-pointer $san -I$cfg -Iinclude -Isrc -Itools"

# Compiles the library and the tools' shared code once, instrumented for
# coverage, into one archive.
echo "=== fuzz: building harnesses (clang, ASan + UBSan) in $out"
rm -f "$obj"/*.o "$out/libfuzz.a"
{ sources libnpipe_internal_la_SOURCES; sources tools_libnptools_la_SOURCES; } |
  xargs -P "$jobs" -I{} sh -c 'o=$2/$(echo "$1" | tr / -).o &&
    exec clang $3 -fsanitize=fuzzer-no-link -DNP_BUILDING -c -o "$o" "$1"' \
    - {} "$obj" "$cflags" ||
  { echo "fuzz.sh: the build failed" >&2; exit 1; }
ar rcs "$out/libfuzz.a" "$obj"/*.o

build() { # name, sources...
  name=$1
  shift
  # shellcheck disable=SC2086
  clang $cflags -fsanitize=fuzzer -o "$out/$name" "$@" "$out/libfuzz.a" \
    -lpthread
}
build fuzz-address tests/fuzz/fuzz-address.c
build fuzz-args tests/fuzz/fuzz-args.c tests/fuzz/args-server.c \
  tests/fuzz/args-client.c
build fuzz-message tests/fuzz/fuzz-message.c

failed=0
run() { # name, default runs, max input length
  name=$1
  n=${runs:-$2}
  log=$out/$name.log
  seeds=tests/fuzz/corpus-${name#fuzz-}
  mkdir -p "$out/corpus-$name"
  start=$(date +%s)
  if ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    "$out/$name" -runs="$n" -max_total_time="$max_time" -max_len="$3" \
      -artifact_prefix="$out/$name-" -print_final_stats=1 \
      "$out/corpus-$name" "$seeds" >"$log" 2>&1; then
    done_line=$(grep -E '^Done [0-9]+ runs' "$log" || echo "no Done line")
    echo "PASS: $name: $done_line ($(find "$seeds" -type f | wc -l)" \
      "seed files replayed," \
      "$(($(date +%s) - start)) s)"
  else
    echo "FAIL: $name (log: $log)"
    grep -E 'ERROR|SUMMARY|fuzz-[a-z]+:|Test unit written' "$log" | head -20
    tail -40 "$log"
    failed=1
  fi
}
run fuzz-address 1000000 4200
run fuzz-args 100000 1024
run fuzz-message 20000 512
[ "$failed" -eq 0 ] || { echo "=== fuzz: FAILED"; exit 1; }
echo "=== fuzz: every harness passed"
