#!/bin/sh
# pipe-server --threads: many clients at once against --echo on 4
# threads (every byte checked), a full server on 3 threads that pauses
# and resumes its listener, --exec on 2 threads, --once on 4 threads
# (every thread stops and the exit status is 0), and the usage errors.
. "${srcdir:-.}/tests/tools/lib.sh"

CLIENTS=${NPT_CLIENTS:-40}
# Message mode everywhere: a half-close in byte mode does not reach the
# server through a Windows named pipe (npipe(7)); an empty message does.

# payloads COUNT: in.I of 64 KiB and more, different for every client.
payloads() {
  i=0
  while [ $i -lt "$1" ]; do
    i=$((i + 1))
    head -c $((65536 + i * 997)) /dev/urandom >"$npt_work/in.$i" ||
      exit 99
  done
}

# check_echo COUNT: out.I is in.I, byte for byte.
check_echo() {
  i=0
  while [ $i -lt "$1" ]; do
    i=$((i + 1))
    cmp -s "$npt_work/in.$i" "$npt_work/out.$i" ||
      npt_fail "client $i got $(wc -c <"$npt_work/out.$i") bytes back," \
        "not its $(wc -c <"$npt_work/in.$i")"
  done
}

server_alive() {
  kill -0 "$1" 2>/dev/null ||
    npt_fail "the server died ($(cat "$npt_work/server.err"))"
}

# --echo on 4 threads, every client at once.
name=$(npt_name echo)
npt_start /dev/null "$SERVER" "pipe:$name" --echo --threads 4 --backlog 8 \
  --message >/dev/null 2>"$npt_work/server.err"
server=$npt_last
npt_wait_server "$name" --message
payloads "$CLIENTS"
npt_run_clients "$name" "$CLIENTS"
check_echo "$CLIENTS"
server_alive "$server"
echo "ok: --threads 4 echoed every byte to $CLIENTS concurrent clients"

# A full server: 3 threads, 2 clients at a time, the others wait.
full=12
name=$(npt_name full)
npt_start /dev/null "$SERVER" "pipe:$name" --echo --threads 3 \
  --max-clients 2 --message >/dev/null 2>"$npt_work/server.err"
server=$npt_last
npt_wait_server "$name" --message
npt_run_clients "$name" $full
check_echo $full
server_alive "$server"
echo "ok: --threads 3 --max-clients 2 served $full clients in turn"

# --exec on 2 threads: a filter per client, its output checked.
if npt_wine; then
  # Wine's find.exe prints the input lines holding "line": all of them.
  filter='find "line"'
else
  filter='cat'
fi
execs=6
name=$(npt_name exec)
npt_start /dev/null "$SERVER" "pipe:$name" --exec "$filter" --threads 2 \
  --message >/dev/null 2>"$npt_work/server.err"
server=$npt_last
npt_wait_server "$name" --message
i=0
while [ $i -lt $execs ]; do
  i=$((i + 1))
  n=0
  while [ $n -lt 200 ]; do
    n=$((n + 1))
    echo "line $n of client $i"
  done >"$npt_work/in.$i"
done
npt_run_clients "$name" $execs
i=0
while [ $i -lt $execs ]; do
  i=$((i + 1))
  tr -d '\r' <"$npt_work/out.$i" | cmp -s "$npt_work/in.$i" - ||
    npt_fail "client $i: the command's output differs from its input"
done
server_alive "$server"
echo "ok: --exec '$filter' --threads 2 filtered $execs concurrent clients"

# --once on 4 threads: every thread stops after the client, status 0.
name=$(npt_name once)
npt_start /dev/null "$SERVER" "pipe:$name" --echo --threads 4 --once \
  --message >/dev/null 2>"$npt_work/server.err"
server=$npt_last
payloads 1
npt_run_clients "$name" 1
check_echo 1
npt_wait_pid "$server" 30
[ "$npt_status" -eq 0 ] ||
  npt_fail "--once exited with $npt_status ($(cat "$npt_work/server.err"))"
echo "ok: --threads 4 --once served one client and exited 0"

# usage_error PATTERN ARGS...: pipe-server exits 2 with one line and the
# hint to --help.
usage_error() {
  pattern=$1
  shift
  npt_run "$SERVER" "$@" </dev/null >"$npt_work/out" 2>"$npt_work/err"
  status=$?
  [ "$status" -eq 2 ] || npt_fail "'$*' exited with $status, not 2"
  first=$(head -n 1 "$npt_work/err" | tr -d '\r')
  case $first in
  *"$pattern"*) ;;
  *) npt_fail "'$*' said '$first', expected '$pattern'" ;;
  esac
  [ "$(wc -l <"$npt_work/err")" -eq 2 ] ||
    npt_fail "'$*' said more than a line and the hint"
  echo "ok: $* -> 2: $first"
}

usage_error "invalid value '0' for --threads (1 to 64)" pipe:x --echo \
  --threads 0
usage_error "invalid value '65' for --threads" pipe:x --echo --threads=65
usage_error "--threads needs --echo, --exec or --forward" pipe:x --threads 2
