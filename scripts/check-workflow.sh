#!/bin/sh
# Validates the GitHub Actions workflows against the workflow schema with
# action-validator (npm, pinned), installed on first use into
# _build/action-validator.  Exits non-zero if any file is invalid.
# Usage: scripts/check-workflow.sh [FILE...]   (default: .github/workflows/*.yml)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
version=0.6.0
dir=$top/_build/action-validator
cli=$dir/node_modules/@action-validator/cli/cli.mjs
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "check-workflow.sh: needs node and npm (scripts/install-deps.sh)" >&2
  exit 1
fi
if ! grep -qs "\"version\": \"$version\"" \
  "$dir/node_modules/@action-validator/cli/package.json"; then
  mkdir -p "$dir"
  # The CLI and the validator it imports (a peer dependency), same version;
  # a registry that stumbles gets three tries.
  tries=0
  until npm install --prefix "$dir" --save-exact --no-audit --no-fund \
    --loglevel=error "@action-validator/cli@$version" \
    "@action-validator/core@$version" >&2; do
    tries=$((tries + 1))
    [ "$tries" -lt 3 ] || exit 1
    sleep 5
  done
fi
[ $# -gt 0 ] || set -- "$top"/.github/workflows/*.yml
status=0
for f in "$@"; do
  if node "$cli" "$f"; then
    echo "check-workflow.sh: ${f#"$top"/}: valid"
  else
    echo "check-workflow.sh: ${f#"$top"/}: INVALID (errors above)" >&2
    status=1
  fi
done
exit $status
