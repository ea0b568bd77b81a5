#!/bin/sh
# pipe-client --listen forwards each local connection to the server;
# pipe-server --max-clients makes clients take turns; and
# --exit-on-peer-close ends a client whose input never ends.
. "${srcdir:-.}/tests/tools/lib.sh"

mkfifo "$npt_work/hold"
exec 7<>"$npt_work/hold"

svc=$(npt_name svc)
front=$(npt_name front)
npt_start /dev/null "$SERVER" "pipe:$svc" --echo --message --max-clients 2 \
  >/dev/null 2>"$npt_work/server.err"
npt_wait_server "$svc" --message
npt_start /dev/null "$CLIENT" "pipe:$svc" --message --listen "pipe:$front" \
  -v >/dev/null 2>"$npt_work/bridge.err"
npt_wait_server "$front" --message

# Six clients through the bridge at once, to a server that serves two at
# a time: each still gets its own line back.
i=0
clients=""
while [ $i -lt 6 ]; do
  i=$((i + 1))
  printf 'via the bridge %d\n' $i >"$npt_work/in.$i"
  npt_start "$npt_work/in.$i" "$CLIENT" "pipe:$front" --message \
    --half-close --wait --timeout 30000 >"$npt_work/out.$i" \
    2>"$npt_work/err.$i"
  clients="$clients $npt_last:$i"
done
for c in $clients; do
  npt_wait_pid "${c%%:*}" 60
  i=${c#*:}
  [ "$npt_status" -eq 0 ] ||
    npt_fail "client $i exited with $npt_status ($(cat "$npt_work/err.$i"))"
  npt_expect "$npt_work/out.$i" "via the bridge $i"
done
echo "ok: --listen forwarded 6 clients to a --max-clients 2 server"

# --exit-on-peer-close: the server sends a line and ends its side; the
# client's own input (a FIFO nobody writes) never ends.
name=$(npt_name peerclose)
printf 'last words\n' >"$npt_work/words"
npt_start "$npt_work/words" "$SERVER" "pipe:$name" --once --message \
  >/dev/null 2>"$npt_work/server.err"
server=$npt_last
npt_start "$npt_work/hold" "$CLIENT" "pipe:$name" --message \
  --exit-on-peer-close --wait --timeout 30000 >"$npt_work/out" \
  2>"$npt_work/err"
client=$npt_last
npt_wait_pid "$client" 30
[ "$npt_status" -eq 0 ] ||
  npt_fail "--exit-on-peer-close client exited with $npt_status ($(cat "$npt_work/err"))"
npt_expect "$npt_work/out" "last words"
npt_wait_pid "$server" 30
[ "$npt_status" -eq 0 ] || npt_fail "server exited with $npt_status"
echo "ok: --exit-on-peer-close ended the client after the server's output"
