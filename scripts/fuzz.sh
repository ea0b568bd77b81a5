#!/bin/sh
# Builds the libFuzzer harnesses in tests/fuzz/ with clang (ASan + UBSan)
# and runs each for a bounded number of inputs.
# Usage: scripts/fuzz.sh [RUNS]   (default 200000 per harness)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-200000}
out=$top/_build/fuzz
mkdir -p "$out"
cd "$top"
[ -f _build/native/config.h ] || { echo "fuzz.sh: build natively first (scripts/test-all.sh native)" >&2; exit 2; }
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
  -I_build/native -Iinclude -Isrc"
build() { # name, sources...
  name=$1
  shift
  # shellcheck disable=SC2086
  clang $flags -o "$out/$name" "$@"
}
run() { # name, corpus dir
  mkdir -p "$out/corpus-$1"
  "$out/$1" -runs="$runs" -max_len=4200 "$out/corpus-$1" "$2" \
    >"$out/$1.log" 2>&1 || { tail -40 "$out/$1.log"; exit 1; }
  printf '%s: %s\n' "$1" "$(grep -E '^Done' "$out/$1.log")"
}
build fuzz-address tests/fuzz/fuzz-address.c src/common/address.c \
  src/common/options.c
run fuzz-address tests/fuzz/corpus-address
