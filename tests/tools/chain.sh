#!/bin/sh
# A chain pipe -> TCP -> pipe: pipe-server --forward from pipe:A to a TCP
# port, pipe-server --forward from that port to pipe:B, and an echo
# server on pipe:B.  10 MiB go through and come back with the same
# checksum.  Windows pipes have no byte-mode half-close, so on Windows
# (and under Wine) the pipe sides use message mode.
. "${srcdir:-.}/tests/tools/lib.sh"

if npt_windows; then
  mode=--message
else
  mode=
fi
head -c 10485760 /dev/urandom >"$npt_work/payload" ||
  npt_fail "cannot make the payload"
a=$(npt_name chainA)
b=$(npt_name chainB)

npt_start /dev/null "$SERVER" "pipe:$b" --echo $mode \
  >/dev/null 2>"$npt_work/echo.err"
# Port 0: the system picks one, and -v reports it.
npt_start /dev/null "$SERVER" tcp:127.0.0.1:0 --forward "pipe:$b" $mode -v \
  >/dev/null 2>"$npt_work/tcp.err"
tcp_server=$npt_last
i=0
port=""
while [ -z "$port" ]; do
  port=$(sed -n 's/.*listening on tcp:127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' \
    "$npt_work/tcp.err" | head -n 1)
  [ -n "$port" ] && break
  if ! kill -0 "$tcp_server" 2>/dev/null; then
    grep -q "not supported" "$npt_work/tcp.err" &&
      npt_skip "TCP is not supported yet: $(cat "$npt_work/tcp.err")"
    npt_fail "TCP server failed: $(cat "$npt_work/tcp.err")"
  fi
  i=$((i + 1))
  [ $i -lt 300 ] || npt_fail "TCP server reported no port"
  sleep 0.1
done
npt_start /dev/null "$SERVER" "pipe:$a" --forward "tcp:127.0.0.1:$port" \
  $mode >/dev/null 2>"$npt_work/front.err"
npt_wait_server "$a" $mode

npt_run "$CLIENT" "pipe:$a" --send "$npt_work/payload" $mode --stats \
  >"$npt_work/reply" 2>"$npt_work/client.err" ||
  npt_fail "client exited with $? ($(cat "$npt_work/client.err"))"
sum_in=$(cksum <"$npt_work/payload")
sum_out=$(cksum <"$npt_work/reply")
[ "$sum_in" = "$sum_out" ] ||
  npt_fail "checksums differ: sent $sum_in, got back $sum_out"
tr -d '\r' <"$npt_work/client.err"
echo "ok: 10 MiB through pipe -> tcp:127.0.0.1:$port -> pipe and back: $sum_out"

# A forwarder whose target is not there yet: the client's connection
# waits for it (pipe-server(1): up to 10 s) instead of being dropped.
late=$(npt_name chainLate)
front=$(npt_name chainFront)
npt_start /dev/null "$SERVER" "pipe:$front" --forward "pipe:$late" $mode \
  >/dev/null 2>"$npt_work/late-front.err"
npt_wait_server "$front" $mode
printf 'waited for\n' >"$npt_work/late.in"
npt_start "$npt_work/late.in" "$CLIENT" "pipe:$front" --half-close $mode -v \
  >"$npt_work/late.out" 2>"$npt_work/late.err"
client=$npt_last
npt_wait_connected "$npt_work/late.err" "$client"
npt_start /dev/null "$SERVER" "pipe:$late" --echo $mode \
  >/dev/null 2>"$npt_work/late-echo.err"
npt_wait_pid "$client" 30
[ "$npt_status" -eq 0 ] ||
  npt_fail "client of a late target exited with $npt_status ($(cat "$npt_work/late.err"))"
npt_expect "$npt_work/late.out" "waited for"
echo "ok: --forward waited for a target that came late"
