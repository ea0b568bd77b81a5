# Sourced by the scripts that run Windows binaries: a private Wine prefix
# inside the build tree, quiet, without Mono/Gecko prompts.
top=${top:-$(pwd)}
export WINEPREFIX="$top/_build/wineprefix"
export WINEARCH=win64
export WINEDEBUG=-all
export WINEDLLOVERRIDES='mscoree,mshtml=;winemenubuilder.exe=d;winedbg.exe=d'
np_wine_start() {
  # Started with /dev/null as stderr, the wineserver cannot hold the
  # caller's output open after the run.
  wineboot -i </dev/null >/dev/null 2>&1 || true
}
np_wine_stop() {
  wineserver -k >/dev/null 2>&1 || true
  wineserver -w >/dev/null 2>&1 || true
}
