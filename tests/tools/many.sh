#!/bin/sh
# 50 clients at once against one pipe-server --echo: each gets back
# exactly its own line.
. "${srcdir:-.}/tests/tools/lib.sh"

CLIENTS=${NPT_CLIENTS:-50}
name=$(npt_name many)
npt_start /dev/null "$SERVER" "pipe:$name" --echo --message --backlog 8 \
  >/dev/null 2>"$npt_work/server.err"
server=$npt_last
npt_wait_server "$name" --message

i=0
while [ $i -lt $CLIENTS ]; do
  i=$((i + 1))
  printf 'client %d of %d\n' $i $CLIENTS >"$npt_work/in.$i"
done
npt_run_clients "$name" $CLIENTS
i=0
while [ $i -lt $CLIENTS ]; do
  i=$((i + 1))
  npt_expect "$npt_work/out.$i" "client $i of $CLIENTS"
done
kill -0 "$server" 2>/dev/null ||
  npt_fail "the server died ($(cat "$npt_work/server.err"))"
echo "ok: $CLIENTS concurrent clients each got their own line back"
