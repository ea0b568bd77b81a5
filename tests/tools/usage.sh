#!/bin/sh
# Bad command lines exit 2 with a one-line message naming the problem
# (and a hint to --help); --help and --version exit 0.
. "${srcdir:-.}/tests/tools/lib.sh"

# usage_error PATTERN TOOL ARGS...: exit 2, stderr's first line matches.
usage_error() {
  pattern=$1
  shift
  npt_run "$@" </dev/null >"$npt_work/out" 2>"$npt_work/err"
  status=$?
  [ "$status" -eq 2 ] || npt_fail "'$*' exited with $status, not 2"
  first=$(head -n 1 "$npt_work/err" | tr -d '\r')
  case $first in
  *"$pattern"*) ;;
  *) npt_fail "'$*' said '$first', expected '$pattern'" ;;
  esac
  grep -q -- "--help" "$npt_work/err" || npt_fail "'$*' gave no --help hint"
  [ ! -s "$npt_work/out" ] || npt_fail "'$*' wrote to stdout"
  echo "ok: $* -> 2: $first"
}

usage_error "missing ADDRESS" "$SERVER"
usage_error "missing ADDRESS" "$CLIENT"
usage_error "unknown option '--bogus'" "$SERVER" pipe:x --bogus
usage_error "unknown option '-q'" "$CLIENT" pipe:x -q
usage_error "option '--exec' needs a value" "$SERVER" pipe:x --exec
usage_error "--exec needs a command" "$SERVER" pipe:x --exec ''
usage_error "--exec needs a command" "$SERVER" pipe:x --exec '  '
usage_error "option '--echo' takes no value" "$SERVER" pipe:x --echo=yes
usage_error "invalid value 'abc' for --timeout" "$CLIENT" pipe:x --timeout abc
usage_error "invalid value '-5' for --timeout" "$CLIENT" pipe:x --timeout -5
usage_error "invalid value 'sometimes' for --wait" "$CLIENT" pipe:x \
  --wait=sometimes
usage_error "invalid value '0' for --backlog" "$SERVER" pipe:x --backlog 0
usage_error "invalid value '256' for --backlog" "$SERVER" pipe:x \
  --backlog=256
usage_error "cannot be combined" "$SERVER" pipe:x --echo --exec cat
usage_error "unexpected argument 'pipe:y'" "$CLIENT" pipe:x pipe:y
usage_error "--progress needs --send" "$CLIENT" pipe:x --progress
usage_error "--listen cannot be combined" "$CLIENT" pipe:x \
  --listen pipe:y --half-close
usage_error "--max-clients needs" "$SERVER" pipe:x --max-clients 3
if npt_windows; then
  usage_error "only available on POSIX" "$SERVER" pipe:x --mode 0600
  usage_error "only available on POSIX" "$SERVER" pipe:x --allow-uid 5
else
  usage_error "only available on Windows" "$SERVER" pipe:x --sddl D:
  usage_error "only available on Windows" "$SERVER" pipe:x --allow-remote
  usage_error "invalid value '0999' for --mode" "$SERVER" pipe:x \
    --mode 0999
fi
# Malformed addresses are usage errors too, named with the cause.
usage_error "not-an-address: invalid argument" "$CLIENT" not-an-address
usage_error "pipe:a/b: invalid argument" "$SERVER" pipe:a/b

for tool in "$SERVER" "$CLIENT"; do
  npt_run "$tool" --help >"$npt_work/out" 2>&1 ||
    npt_fail "$tool --help exited with $?"
  grep -q "^Usage: " "$npt_work/out" || npt_fail "$tool --help: no usage"
  npt_run "$tool" -V >"$npt_work/out" 2>&1 || npt_fail "$tool -V: $?"
  grep -q "(npipe) [0-9]" "$npt_work/out" || npt_fail "$tool -V: no version"
done
echo "ok: --help and --version"
