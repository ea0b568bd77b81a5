# Sourced by the tool tests: where the tools are, how to run them (through
# Wine for a cross-built Windows build, directly for a native one), unique
# names, bounded waits, and cleanup of every process a test starts.
set -u
: "${top_builddir:=.}"
: "${EXEEXT:=}"
: "${NP_RUNNER:=}"
SERVER="$top_builddir/tools/pipe-server$EXEEXT"
CLIENT="$top_builddir/tools/pipe-client$EXEEXT"
# Seconds any one tool run may take before the test fails.
NPT_LIMIT=${NPT_LIMIT:-60}

npt_work=$(mktemp -d "${TMPDIR:-/tmp}/npt-tools-XXXXXX") || exit 99
npt_pids=""
# POSIX: pipe names live in a directory of this test's own.
NPIPE_DIR="$npt_work/pipes"
export NPIPE_DIR
mkdir -m 700 "$NPIPE_DIR" || exit 99

npt_cleanup() {
  for pid in $npt_pids; do
    kill "$pid" 2>/dev/null
  done
  for pid in $npt_pids; do
    wait "$pid" 2>/dev/null
  done
  rm -rf "$npt_work"
}
trap npt_cleanup EXIT
trap 'exit 99' HUP INT TERM

# The tools are Windows programs (native, or a cross build under Wine)...
npt_windows() { [ "$EXEEXT" = .exe ]; }
# ...run through Wine (what Wine does not do as Windows does).
npt_wine() { [ -n "$NP_RUNNER" ]; }

# A pipe name unique to this run: Windows pipe names are global (per
# wineserver under Wine).
npt_name() { echo "npt-$$-$1"; }

npt_fail() {
  echo "FAIL: $*"
  exit 1
}

npt_skip() {
  echo "SKIP: $*"
  exit 77
}

# Runs a tool in the foreground, bounded: npt_run TOOL ARGS...
npt_run() {
  timeout --kill-after=5 "$NPT_LIMIT" $NP_RUNNER "$@"
}

# Starts a tool in the background, bounded, reading file $1:
# npt_start INPUT TOOL ARGS...  Its pid is in $npt_last.  Output goes
# where the caller redirects it.  (sh gives a background job /dev/null as
# input unless the job itself redirects it, hence the explicit file.)
npt_start() {
  npt_in=$1
  shift
  timeout --kill-after=5 "$NPT_LIMIT" $NP_RUNNER "$@" <"$npt_in" &
  npt_last=$!
  npt_pids="$npt_pids $npt_last"
}

# Waits (at most $2 seconds, default 30) for background pid $1; fails if
# it is still running.  The exit status is in $npt_status.
npt_wait_pid() {
  n=0
  limit=$((${2:-30} * 10))
  while kill -0 "$1" 2>/dev/null; do
    n=$((n + 1))
    [ "$n" -le "$limit" ] || npt_fail "process $1 still running after ${2:-30} s"
    sleep 0.1
  done
  wait "$1"
  npt_status=$?
}

# Waits until pipe NAME accepts connections (the server is up):
# npt_wait_server NAME [CLIENT_FLAGS...] (--message for such a server).
npt_wait_server() {
  npt_probe=$1
  shift
  npt_run "$CLIENT" "pipe:$npt_probe" --wait --timeout 30000 \
    --exit-on-stdin-eof "$@" </dev/null >/dev/null 2>"$npt_work/probe.err" ||
    npt_fail "server pipe:$npt_probe did not come up: $(cat "$npt_work/probe.err")"
}

# Waits (at most 30 s) until a pipe-client run with -v and its standard
# error in file $1 says it is connected; fails if it ends first ($2: its
# pid) or the time runs out.
npt_wait_connected() {
  n=0
  until grep -q ': connected' "$1" 2>/dev/null; do
    kill -0 "$2" 2>/dev/null ||
      npt_fail "the client ended before it connected: $(cat "$1")"
    n=$((n + 1))
    [ "$n" -le 300 ] || npt_fail "the client did not connect within 30 s"
    sleep 0.1
  done
}

# Compares file $1 with the expected text $2, ignoring carriage returns
# (Windows programs end lines in \r\n).
npt_expect() {
  got=$(tr -d '\r' <"$1")
  [ "$got" = "$2" ] || npt_fail "expected '$2', got '$got' in $1"
}

# Seconds since the epoch, with fractions when date has them.
npt_now() { date +%s.%N 2>/dev/null | sed 's/N$/0/'; }

# Starts COUNT message-mode clients of pipe:NAME at once, each sending
# its own file in.I (made by the caller) and saving what comes back in
# out.I; waits for all of them and checks that each exited 0:
# npt_run_clients NAME COUNT.
npt_run_clients() {
  clients=""
  i=0
  while [ $i -lt "$2" ]; do
    i=$((i + 1))
    npt_start "$npt_work/in.$i" "$CLIENT" "pipe:$1" --message --half-close \
      --wait --timeout 60000 >"$npt_work/out.$i" 2>"$npt_work/err.$i"
    clients="$clients $npt_last:$i"
  done
  for c in $clients; do
    npt_wait_pid "${c%%:*}" 120
    i=${c#*:}
    [ "$npt_status" -eq 0 ] ||
      npt_fail "client $i exited with $npt_status ($(cat "$npt_work/err.$i"))"
  done
}
