#!/bin/sh
# A write error on pipe-client's standard output ends the session at
# once, with exit status 1 and a message: its reader went away (EPIPE)
# or the disk is full (ENOSPC, POSIX: /dev/full).
. "${srcdir:-.}/tests/tools/lib.sh"

name=$(npt_name out)
npt_start /dev/null "$SERVER" "pipe:$name" --echo --message \
  >/dev/null 2>"$npt_work/server.err"
npt_wait_server "$name" --message
head -c 4194304 /dev/zero >"$npt_work/big" || exit 99

# The reader takes 10 bytes and leaves: the client must not keep sending
# the rest of its input to an echo that nobody reads.
status=$( (npt_run "$CLIENT" "pipe:$name" --message --send "$npt_work/big" \
  2>"$npt_work/client.err"; echo $? >"$npt_work/status") | head -c 10 |
  wc -c)
[ "$status" -eq 10 ] || npt_fail "the reader got $status bytes"
st=$(cat "$npt_work/status")
[ "$st" -eq 1 ] ||
  npt_fail "a client whose output closed exited with $st: $(cat "$npt_work/client.err")"
grep -q "standard output: broken pipe" "$npt_work/client.err" ||
  npt_fail "no message for the closed output: $(cat "$npt_work/client.err")"
echo "ok: a closed standard output ends the client with 1 and a message"

if [ -w /dev/full ] && ! npt_windows; then
  for input in small big; do
    if [ $input = small ]; then
      printf 'hi\n' | npt_run "$CLIENT" "pipe:$name" --message --half-close \
        >/dev/full 2>"$npt_work/client.err"
    else
      npt_run "$CLIENT" "pipe:$name" --message --send "$npt_work/big" \
        >/dev/full 2>"$npt_work/client.err"
    fi
    st=$?
    [ "$st" -eq 1 ] ||
      npt_fail "a client writing to a full disk ($input) exited with $st"
    grep -q "standard output: no space left on device" "$npt_work/client.err" ||
      npt_fail "no message for the full disk: $(cat "$npt_work/client.err")"
  done
  echo "ok: a full standard output ends the client with 1 and a message"
fi
