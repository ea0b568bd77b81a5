#!/bin/sh
# pipe-server --exec: a filter command per client, with its input and
# output connected to the client; the command's exit closes the client.
. "${srcdir:-.}/tests/tools/lib.sh"

if npt_windows; then
  # find.exe (Windows' and Wine's) is a filter: it prints the input lines holding "hello".
  filter='find "hello"'
  expected='hello pipe'
  talker='cmd /c echo from the command'
else
  filter='tr a-z A-Z'
  expected='HELLO PIPE
BYE PIPE'
  talker='echo from the command'
fi

# The filter reads to the end of the client's input, then exits.
name=$(npt_name exec)
npt_start /dev/null "$SERVER" "pipe:$name" --exec "$filter" --once \
  --message >/dev/null 2>"$npt_work/server.err"
server=$npt_last
printf 'hello pipe\nbye pipe\n' |
  npt_run "$CLIENT" "pipe:$name" --wait --timeout 30000 --half-close \
    --message >"$npt_work/out" 2>"$npt_work/err" ||
  npt_fail "client exited with $? ($(cat "$npt_work/err"))"
npt_expect "$npt_work/out" "$expected"
npt_wait_pid "$server" 30
[ "$npt_status" -eq 0 ] ||
  npt_fail "server exited with $npt_status ($(cat "$npt_work/server.err"))"
echo "ok: --exec '$filter' filtered the client's input"

# A command that exits without reading: the client is closed although its
# own input never ends.
name=$(npt_name talker)
mkfifo "$npt_work/hold"
exec 7<>"$npt_work/hold"
npt_start /dev/null "$SERVER" "pipe:$name" --exec "$talker" --once \
  >/dev/null 2>"$npt_work/server.err"
server=$npt_last
npt_run "$CLIENT" "pipe:$name" --wait --timeout 30000 <"$npt_work/hold" \
  >"$npt_work/out" 2>"$npt_work/err" ||
  npt_fail "client exited with $? ($(cat "$npt_work/err"))"
npt_expect "$npt_work/out" "from the command"
npt_wait_pid "$server" 30
[ "$npt_status" -eq 0 ] || npt_fail "server exited with $npt_status"
echo "ok: the command's exit closed the client"

# A command that cannot run: the client is closed, --once reports it.
name=$(npt_name missing)
npt_start /dev/null "$SERVER" "pipe:$name" --exec "npt-no-such-program-$$" \
  --once >/dev/null 2>"$npt_work/server.err"
server=$npt_last
npt_run "$CLIENT" "pipe:$name" --wait --timeout 30000 </dev/null \
  >"$npt_work/out" 2>"$npt_work/err" ||
  npt_fail "client exited with $? ($(cat "$npt_work/err"))"
npt_wait_pid "$server" 30
[ "$npt_status" -eq 1 ] || npt_fail "server exited with $npt_status, not 1"
grep -q "cannot run 'npt-no-such-program-$$'" "$npt_work/server.err" ||
  npt_fail "server said '$(cat "$npt_work/server.err")'"
echo "ok: a command that cannot run is reported, --once exits 1"
