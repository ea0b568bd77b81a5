#!/bin/sh
# Who is on the other end: with -v both tools name the account at the
# other end (the same user here), pipe-server --allow-user serves only
# the accounts it names and logs every refusal with the reason, and
# pipe-client --any-server is accepted.
. "${srcdir:-.}/tests/tools/lib.sh"

# One message-mode echo through a --once server run with the given
# options; the server's and the client's stderr are kept.
echo_once() {
  name=$(npt_name "id$1")
  shift
  npt_start /dev/null "$SERVER" "pipe:$name" --echo --once --message -v "$@" \
    >/dev/null 2>"$npt_work/server.err"
  server=$npt_last
  printf 'who\n' |
    npt_run "$CLIENT" "pipe:$name" --wait --timeout 30000 --half-close \
      --message --any-server -v \
      >"$npt_work/client.out" 2>"$npt_work/client.err" ||
    npt_fail "client exited with $? ($(cat "$npt_work/client.err"))"
  npt_expect "$npt_work/client.out" "who"
  npt_wait_pid "$server" 30
  [ "$npt_status" -eq 0 ] ||
    npt_fail "server exited with $npt_status ($(cat "$npt_work/server.err"))"
}

echo_once a
user=$(tr -d '\r' <"$npt_work/server.err" |
  sed -n 's/^.*client 1: connected, pid [0-9]*, user //p')
[ -n "$user" ] || npt_fail "the server did not name the client: $(cat "$npt_work/server.err")"
tr -d '\r' <"$npt_work/client.err" | grep -q "connected, server pid" &&
  tr -d '\r' <"$npt_work/client.err" | grep -qF ", user $user" ||
  npt_fail "the client did not name the server '$user': $(cat "$npt_work/client.err")"
if ! npt_windows; then
  [ "$user" = "$(id -un)" ] || npt_fail "named '$user', expected '$(id -un)'"
fi
echo "ok: both ends name the account at the other end ($user)"

echo_once b --allow-user nobody-npipe-test --allow-user "$user"
echo "ok: --allow-user serves a listed account"

# An account that is not listed: the connection is closed before any
# byte is served, and the server says why.
name=$(npt_name idc)
npt_start /dev/null "$SERVER" "pipe:$name" --echo --message \
  --allow-user nobody-npipe-test >/dev/null 2>"$npt_work/server.err"
server=$npt_last
printf 'who\n' |
  npt_run "$CLIENT" "pipe:$name" --wait --timeout 30000 --half-close \
    --message >"$npt_work/client.out" 2>"$npt_work/client.err"
[ ! -s "$npt_work/client.out" ] ||
  npt_fail "a refused client got '$(cat "$npt_work/client.out")'"
n=0
until tr -d '\r' <"$npt_work/server.err" |
  grep -qF "client 1: refused: user $user is not allowed (--allow-user)"; do
  n=$((n + 1))
  [ "$n" -le 300 ] ||
    npt_fail "no refusal logged: $(cat "$npt_work/server.err")"
  sleep 0.1
done
kill "$server" 2>/dev/null
echo "ok: --allow-user refuses another account, and logs it"

npt_run "$SERVER" "pipe:x" --echo --allow-user "" >/dev/null 2>&1
[ $? -eq 2 ] || npt_fail "--allow-user '' is not a usage error"
echo "ok: an empty --allow-user is a usage error"
