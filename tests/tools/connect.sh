#!/bin/sh
# Connecting: an absent server exits 3 at once; --wait with --timeout
# exits 3 after the timeout; --wait succeeds when the server appears;
# a busy server exits 3 without --wait=busy and after its timeout with it.
. "${srcdir:-.}/tests/tools/lib.sh"

# expect_3 PATTERN ARGS...: pipe-client ARGS exits 3 naming the cause.
expect_3() {
  pattern=$1
  shift
  npt_run "$CLIENT" "$@" </dev/null >"$npt_work/out" 2>"$npt_work/err"
  status=$?
  [ "$status" -eq 3 ] ||
    npt_fail "pipe-client $* exited with $status, not 3 ($(cat "$npt_work/err"))"
  grep -q "$pattern" "$npt_work/err" ||
    npt_fail "pipe-client $*: '$(cat "$npt_work/err")' lacks '$pattern'"
}

absent=$(npt_name absent)
start=$(date +%s)
expect_3 "pipe:$absent: no such pipe or address" "pipe:$absent"
[ $(($(date +%s) - start)) -le 5 ] || npt_fail "absent server: not prompt"
echo "ok: absent server -> 3 at once"

expect_3 "pipe:$absent: no such pipe or address" "pipe:$absent" \
  --wait=busy --timeout 5000
echo "ok: --wait=busy does not wait for an absent server"

start=$(npt_now)
expect_3 "pipe:$absent: operation timed out" "pipe:$absent" \
  --wait=absent --timeout 400
awk -v a="$start" -v b="$(npt_now)" 'BEGIN { exit !(b - a >= 0.4) }' ||
  npt_fail "--timeout 400 returned before 400 ms"
expect_3 "operation timed out" "pipe:$absent" --timeout 300
echo "ok: --wait --timeout -> 3 after the timeout; --timeout implies --wait"

# The server appears a second after the client starts waiting.
late=$(npt_name late)
printf 'early bird\n' >"$npt_work/msg"
npt_start "$npt_work/msg" "$CLIENT" "pipe:$late" --wait --timeout 30000 \
  --half-close --message >"$npt_work/late.out"
client=$npt_last
sleep 1
npt_run "$SERVER" "pipe:$late" --echo --once --message \
  </dev/null >/dev/null 2>"$npt_work/err" ||
  npt_fail "late server exited with $? ($(cat "$npt_work/err"))"
npt_wait_pid "$client" 30
[ "$npt_status" -eq 0 ] || npt_fail "waiting client exited with $npt_status"
npt_expect "$npt_work/late.out" "early bird"
echo "ok: --wait connects once the server appears"

# Busy: a stdio server serves one client at a time and keeps one
# instance waiting (--backlog 1).  Nobody ever writes to the FIFO that
# is everybody's input, so the clients that hold the instances stay, and
# a further client finds the pipe busy.
busy=$(npt_name busy)
hold="$npt_work/hold"
mkfifo "$hold"
exec 7<>"$hold"
npt_start "$hold" "$SERVER" "pipe:$busy" --backlog 1 >/dev/null 2>&1
i=0
found=""
while [ $i -lt 8 ] && [ -z "$found" ]; do
  i=$((i + 1))
  err="$npt_work/err$i"
  npt_start "$hold" "$CLIENT" "pipe:$busy" -v --wait=absent --timeout 20000 \
    >/dev/null 2>"$err"
  probe=$npt_last
  # Until the probe says it connected (it holds an instance) or ends (it
  # found the pipe busy, exit 3): whichever comes, however slowly.
  n=0
  while kill -0 "$probe" 2>/dev/null && ! grep -q ': connected' "$err"; do
    n=$((n + 1))
    [ "$n" -le 300 ] || npt_fail "busy probe $i neither connected nor ended"
    sleep 0.1
  done
  if ! grep -q ': connected' "$err"; then
    wait "$probe"
    status=$?
    [ "$status" -eq 3 ] || npt_fail "busy probe exited with $status"
    grep -q "all pipe instances are busy" "$err" ||
      npt_fail "busy probe said '$(cat "$err")'"
    found=$i
  fi
done
[ -n "$found" ] || npt_fail "the pipe never became busy"
echo "ok: busy server -> 3 at once (after $((found - 1)) held clients)"
start=$(npt_now)
expect_3 "operation timed out" "pipe:$busy" --wait=busy --timeout 400
awk -v a="$start" -v b="$(npt_now)" 'BEGIN { exit !(b - a >= 0.4) }' ||
  npt_fail "--wait=busy --timeout 400 returned before 400 ms"
echo "ok: --wait=busy --timeout -> 3 after the timeout"
