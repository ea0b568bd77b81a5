#!/bin/sh
# Shows pipe-server and pipe-client at work: an echo server that serves
# one client and exits, and a client that sends a line and prints the
# reply.  Usage: scripts/demo.sh BUILD_DIR (a native build, or a mingw
# build run through Wine).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: scripts/demo.sh BUILD_DIR}
build=$(cd "$build" && pwd)

runner=""
exe=""
if [ -f "$build/tools/pipe-server.exe" ]; then
  exe=.exe
  runner=wine
  # The same quiet, private Wine prefix as the tests.
  . "$top/scripts/wine-env.sh"
fi
server="$build/tools/pipe-server$exe"
client="$build/tools/pipe-client$exe"
[ -f "$server" ] && [ -f "$client" ] ||
  { echo "demo.sh: no tools in $build/tools (build first)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/npipe-demo-XXXXXX")
server_pid=""
cleanup() {
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# POSIX: pipe names live in a private directory; this one is the demo's.
NPIPE_DIR="$work/pipes"
export NPIPE_DIR
mkdir -m 700 "$NPIPE_DIR"
name="pipe:npipe-demo-$$"

echo "\$ pipe-server $name --echo --once --message -v --stats &"
timeout 60 $runner "$server" "$name" --echo --once --message -v --stats \
  </dev/null >"$work/server.out" 2>"$work/server.err" &
server_pid=$!

echo "\$ echo 'hello from npipe' | pipe-client $name --message --half-close"
# Message mode: the end of the client's input reaches the server on
# Windows too (npipe(7), "Differences between Windows and POSIX").
echo 'hello from npipe' |
  timeout 60 $runner "$client" "$name" --message --half-close \
    --wait --timeout 30000 >"$work/client.out" 2>"$work/client.err" || {
  status=$?
  echo "demo.sh: pipe-client failed ($status):" >&2
  cat "$work/client.err" >&2
  exit 1
}
echo "--- client output (the server's reply):"
tr -d '\r' <"$work/client.out"

if ! wait "$server_pid"; then
  echo "demo.sh: pipe-server failed:" >&2
  cat "$work/server.err" >&2
  exit 1
fi
server_pid=""
echo "--- server messages (stderr):"
tr -d '\r' <"$work/server.err"
[ "$(tr -d '\r' <"$work/client.out")" = "hello from npipe" ] ||
  { echo "demo.sh: unexpected reply" >&2; exit 1; }
echo "--- the reply matches; both sides exited 0"
