#!/bin/sh
# Echo round trips through pipe-server --echo --once, in byte mode
# (POSIX: a real half-close ends the client's input) and in message mode
# (both systems: an empty message ends it), and --once exits by itself.
. "${srcdir:-.}/tests/tools/lib.sh"

# round_trip MODE_FLAGS...: one client, one line, server exits after it.
round_trip() {
  name=$(npt_name "echo$1")
  shift
  npt_start /dev/null "$SERVER" "pipe:$name" --echo --once "$@" \
    >"$npt_work/server.out" 2>"$npt_work/server.err"
  server=$npt_last
  printf 'hello from npipe\n' |
    npt_run "$CLIENT" "pipe:$name" --wait --timeout 30000 --half-close "$@" \
      >"$npt_work/client.out" 2>"$npt_work/client.err" ||
    npt_fail "client exited with $? ($(cat "$npt_work/client.err"))"
  npt_expect "$npt_work/client.out" "hello from npipe"
  npt_wait_pid "$server" 30
  [ "$npt_status" -eq 0 ] ||
    npt_fail "server exited with $npt_status ($(cat "$npt_work/server.err"))"
  [ ! -s "$npt_work/server.out" ] || npt_fail "server wrote to stdout"
}

round_trip m --message
echo "ok: message mode round trip, --once exited 0"

# Standard input or output closed at start (POSIX): the tool must not
# hand those numbers to its own descriptors (it would read its quit pipe
# and hang); a closed input reads as empty, a closed output discards.
if ! npt_windows; then
  for closed in in out; do
    name=$(npt_name "closed$closed")
    npt_start /dev/null "$SERVER" "pipe:$name" --echo --message \
      >/dev/null 2>"$npt_work/server.err"
    server=$npt_last
    if [ "$closed" = in ]; then
      timeout 20 "$CLIENT" "pipe:$name" --wait --timeout 15000 \
        --half-close --message <&- >/dev/null 2>"$npt_work/client.err"
    else
      printf 'x\n' | timeout 20 "$CLIENT" "pipe:$name" --wait \
        --timeout 15000 --half-close --message >&- 2>"$npt_work/client.err"
    fi
    status=$?
    [ "$status" -eq 0 ] ||
      npt_fail "client with std$closed closed exited with $status ($(cat "$npt_work/client.err"))"
    kill "$server" 2>/dev/null
    wait "$server" 2>/dev/null
  done
  echo "ok: a client started with stdin or stdout closed ends, exit 0"
fi
if npt_windows; then
  echo "byte mode half-close: not on Windows named pipes (npipe(7))"
else
  round_trip b
  echo "ok: byte mode round trip, --once exited 0"
fi

# A server that relays standard input and output (the default) with a
# client that relays its own: both directions, then both ends exit.
name=$(npt_name stdio)
printf 'to the client\n' >"$npt_work/server.in"
npt_start "$npt_work/server.in" "$SERVER" "pipe:$name" --once --message \
  >"$npt_work/server.out" 2>"$npt_work/server.err"
server=$npt_last
printf 'to the server\n' |
  npt_run "$CLIENT" "pipe:$name" --wait --timeout 30000 --half-close \
    --message >"$npt_work/client.out" 2>"$npt_work/client.err" ||
  npt_fail "stdio client exited with $? ($(cat "$npt_work/client.err"))"
npt_wait_pid "$server" 30
[ "$npt_status" -eq 0 ] ||
  npt_fail "stdio server exited with $npt_status ($(cat "$npt_work/server.err"))"
npt_expect "$npt_work/client.out" "to the client"
npt_expect "$npt_work/server.out" "to the server"
echo "ok: stdio server and client exchanged a line each way"
