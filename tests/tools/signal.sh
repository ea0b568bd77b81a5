#!/bin/sh
# SIGINT and SIGTERM close the tools cleanly (exit 128 + signal, the
# socket removed), and a peer that vanishes, even by SIGKILL, never
# leaves the other side hanging.  POSIX signals: not on Windows.
. "${srcdir:-.}/tests/tools/lib.sh"
npt_wine && npt_skip "POSIX signals; Windows console events are not testable under Wine"
npt_windows && npt_skip "POSIX signals; a native Windows build has none (and no pgrep to find the tool under timeout)"

mkfifo "$npt_work/hold"
exec 7<>"$npt_work/hold"
hold="$npt_work/hold"

# The tool's own pid, under the timeout(1) that npt_start runs it in.
child_of() {
  i=0
  until pid=$(pgrep -P "$1") && [ -n "$pid" ]; do
    i=$((i + 1))
    [ $i -lt 50 ] || npt_fail "no child of $1"
    sleep 0.1
  done
  echo "$pid"
}

# stop SIGNAL STATUS: a server with a client, stopped by SIGNAL.
stop() {
  name=$(npt_name "sig$1")
  npt_start "$hold" "$SERVER" "pipe:$name" --echo >/dev/null \
    2>"$npt_work/server.err"
  server=$npt_last
  npt_wait_server "$name"
  npt_start "$hold" "$CLIENT" "pipe:$name" -v >/dev/null \
    2>"$npt_work/client.err"
  client=$npt_last
  npt_wait_connected "$npt_work/client.err" "$client"
  kill "-$1" "$(child_of "$server")"
  npt_wait_pid "$server" 10
  [ "$npt_status" -eq "$2" ] ||
    npt_fail "SIG$1: server exited with $npt_status, not $2 ($(cat "$npt_work/server.err"))"
  [ ! -e "$NPIPE_DIR/$name" ] || npt_fail "SIG$1 left $NPIPE_DIR/$name"
  # Its client saw the server go and ended, though its input never did.
  npt_wait_pid "$client" 10
  [ "$npt_status" -eq 0 ] ||
    npt_fail "the client of a stopped server exited with $npt_status ($(cat "$npt_work/client.err"))"
  echo "ok: SIG$1 -> server exit $2, socket removed, its client ended"
}
stop TERM 143
stop INT 130

# A client stopped by SIGTERM while connected.
name=$(npt_name sigclient)
npt_start /dev/null "$SERVER" "pipe:$name" --echo >/dev/null 2>&1
npt_wait_server "$name"
npt_start "$hold" "$CLIENT" "pipe:$name" -v >/dev/null \
  2>"$npt_work/client.err"
client=$npt_last
npt_wait_connected "$npt_work/client.err" "$client"
kill -TERM "$(child_of "$client")"
npt_wait_pid "$client" 10
[ "$npt_status" -eq 143 ] || npt_fail "SIGTERM: client exited with $npt_status"
echo "ok: SIGTERM -> client exit 143"

# A server killed outright: the client ends by itself, promptly.
name=$(npt_name sigkill)
npt_start "$hold" "$SERVER" "pipe:$name" >/dev/null 2>&1
server=$npt_last
npt_wait_server "$name"
npt_start "$hold" "$CLIENT" "pipe:$name" -v >/dev/null \
  2>"$npt_work/client.err"
client=$npt_last
npt_wait_connected "$npt_work/client.err" "$client"
kill -KILL "$(child_of "$server")"
npt_wait_pid "$client" 10
[ "$npt_status" -eq 0 ] ||
  npt_fail "the client of a killed server exited with $npt_status ($(cat "$npt_work/client.err"))"
echo "ok: a client whose server was killed ended by itself"

# And the other way: a client killed outright; --once serves it and ends.
name=$(npt_name sigkill2)
npt_start "$hold" "$SERVER" "pipe:$name" --once >/dev/null 2>&1
server=$npt_last
npt_start "$hold" "$CLIENT" "pipe:$name" -v --wait --timeout 30000 \
  >/dev/null 2>"$npt_work/client.err"
client=$npt_last
npt_wait_connected "$npt_work/client.err" "$client"
kill -KILL "$(child_of "$client")"
npt_wait_pid "$server" 10
[ "$npt_status" -eq 0 ] || npt_fail "--once server exited with $npt_status"
echo "ok: a server whose client was killed ended (--once)"
