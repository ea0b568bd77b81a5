#!/bin/sh
# Programs that npipe did not write talk to the tools: on POSIX, socat
# and Python's socket module over the Unix socket that pipe:NAME names
# ($NPIPE_DIR/NAME); on Windows (and under Wine), cmd.exe writing to
# \\.\pipe\NAME.
. "${srcdir:-.}/tests/tools/lib.sh"

# Waits for the socket of pipe:$1 to appear.
wait_socket() {
  i=0
  until [ -S "$NPIPE_DIR/$1" ]; do
    i=$((i + 1))
    [ $i -lt 100 ] || npt_fail "no socket at $NPIPE_DIR/$1"
    sleep 0.1
  done
}

if npt_windows; then
  # MSYS2 would turn cmd's /c into a path: pass arguments as they are.
  MSYS2_ARG_CONV_EXCL='*'
  export MSYS2_ARG_CONV_EXCL
  name=$(npt_name cmd)
  npt_start /dev/null "$SERVER" "pipe:$name" --once \
    >"$npt_work/server.out" 2>"$npt_work/server.err"
  server=$npt_last
  # cmd opens the pipe as a file: retry while the server starts.  Windows'
  # cmd fails when it finds none; Wine's exits 0 ("File not found.").
  i=0
  while :; do
    if npt_run cmd /c 'echo hi from cmd>\\.\pipe\'"$name" \
      >"$npt_work/cmd.out" 2>&1; then
      grep -q "not found" "$npt_work/cmd.out" || break
    fi
    i=$((i + 1))
    [ $i -lt 50 ] || npt_fail "cmd could not write to the pipe"
    sleep 0.2
  done
  npt_wait_pid "$server" 30
  [ "$npt_status" -eq 0 ] ||
    npt_fail "server exited with $npt_status ($(cat "$npt_work/server.err"))"
  npt_expect "$npt_work/server.out" "hi from cmd"
  echo "ok: cmd.exe wrote to pipe-server through \\\\.\\pipe\\$name"
  exit 0
fi

ran=0
if command -v socat >/dev/null 2>&1; then
  name=$(npt_name socat)
  npt_start /dev/null "$SERVER" "pipe:$name" --echo --once \
    >/dev/null 2>"$npt_work/server.err"
  server=$npt_last
  wait_socket "$name"
  printf 'hello from socat\n' |
    npt_run socat -t 10 - "UNIX-CONNECT:$NPIPE_DIR/$name" \
      >"$npt_work/out" 2>"$npt_work/err" ||
    npt_fail "socat exited with $? ($(cat "$npt_work/err"))"
  npt_expect "$npt_work/out" "hello from socat"
  npt_wait_pid "$server" 30
  [ "$npt_status" -eq 0 ] || npt_fail "server exited with $npt_status"
  echo "ok: socat talked to pipe-server --echo"
  ran=1
fi

if command -v python3 >/dev/null 2>&1; then
  cat >"$npt_work/client.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1])
s.sendall(b"hello from python\n")
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode())
PY
  cat >"$npt_work/server.py" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(1)
s.settimeout(30)
open(sys.argv[1] + ".ready", "w").close()
c, _ = s.accept()
data = b""
while True:
    chunk = c.recv(4096)
    if not chunk:
        break
    data += chunk
c.sendall(data.upper())
c.close()
PY
  name=$(npt_name python)
  npt_start /dev/null "$SERVER" "pipe:$name" --echo --once \
    >/dev/null 2>"$npt_work/server.err"
  server=$npt_last
  wait_socket "$name"
  npt_run python3 "$npt_work/client.py" "$NPIPE_DIR/$name" \
    >"$npt_work/out" 2>"$npt_work/err" ||
    npt_fail "python client exited with $? ($(cat "$npt_work/err"))"
  npt_expect "$npt_work/out" "hello from python"
  npt_wait_pid "$server" 30
  [ "$npt_status" -eq 0 ] || npt_fail "server exited with $npt_status"
  echo "ok: a Python socket client talked to pipe-server --echo"

  # And the other way: pipe-client to a Python server at a unix: path.
  sock="$npt_work/py.sock"
  npt_start /dev/null python3 "$npt_work/server.py" "$sock" \
    >/dev/null 2>"$npt_work/pyserver.err"
  pyserver=$npt_last
  i=0
  until [ -e "$sock.ready" ]; do
    i=$((i + 1))
    [ $i -lt 100 ] || npt_fail "python server did not start"
    sleep 0.1
  done
  printf 'shout\n' | npt_run "$CLIENT" "unix:$sock" --half-close \
    >"$npt_work/out" 2>"$npt_work/err" ||
    npt_fail "pipe-client unix: exited with $? ($(cat "$npt_work/err"))"
  npt_expect "$npt_work/out" "SHOUT"
  npt_wait_pid "$pyserver" 30
  echo "ok: pipe-client talked to a Python server at unix:$sock"
  ran=1
fi
[ $ran -eq 1 ] || npt_skip "neither socat nor python3 found"
