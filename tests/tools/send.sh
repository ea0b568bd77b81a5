#!/bin/sh
# pipe-client --send: a file goes out, the connection is half-closed, and
# the reply comes back whole; the progress meter reports the end.
. "${srcdir:-.}/tests/tools/lib.sh"

head -c 3145728 /dev/urandom >"$npt_work/payload" ||
  npt_fail "cannot make the payload"

# send MODE_FLAGS...: echo the payload back through --send.
send() {
  name=$(npt_name "send$#")
  npt_start /dev/null "$SERVER" "pipe:$name" --echo --once "$@" \
    >/dev/null 2>"$npt_work/server.err"
  server=$npt_last
  npt_run "$CLIENT" "pipe:$name" --wait --timeout 30000 --progress \
    --send "$npt_work/payload" "$@" >"$npt_work/reply" \
    2>"$npt_work/err" ||
    npt_fail "client exited with $? ($(cat "$npt_work/err"))"
  cmp -s "$npt_work/payload" "$npt_work/reply" ||
    npt_fail "the reply differs from the file ($(wc -c <"$npt_work/reply") bytes)"
  tr '\r' '\n' <"$npt_work/err" | grep -q "sent 3.0 of 3.0 MiB (100%)" ||
    npt_fail "no final progress line in '$(cat "$npt_work/err")'"
  npt_wait_pid "$server" 30
  [ "$npt_status" -eq 0 ] ||
    npt_fail "server exited with $npt_status ($(cat "$npt_work/server.err"))"
}

send --message
echo "ok: --send in message mode: 3 MiB back intact, progress at 100%"
if npt_windows; then
  echo "byte mode --send: no half-close on Windows named pipes (npipe(7))"
else
  send
  echo "ok: --send in byte mode: 3 MiB back intact"
fi

# The file is opened before anything connects: no server is needed.
npt_run "$CLIENT" "pipe:$(npt_name nofile)" --send "$npt_work/no-such-file" \
  </dev/null >/dev/null 2>"$npt_work/err"
status=$?
[ "$status" -eq 1 ] || npt_fail "--send of a missing file exited with $status"
grep -q "no-such-file" "$npt_work/err" ||
  npt_fail "the error does not name the file: $(cat "$npt_work/err")"
echo "ok: --send of a missing file exits 1 naming it"
