#!/bin/sh
# Every man page passes mandoc's linter at warning level with nothing to
# report.
: "${srcdir:=.}"
mandoc=${MANDOC:-$(command -v mandoc 2>/dev/null)}
if [ -z "$mandoc" ]; then
  echo "SKIP: mandoc not found"
  exit 77
fi
status=0
count=0
for page in "$srcdir"/man/*.[1-9]; do
  count=$((count + 1))
  out=$("$mandoc" -Tlint -W warning "$page" 2>&1) || status=1
  if [ -n "$out" ]; then
    printf '%s\n' "$out"
    status=1
  fi
done
if [ "$count" -eq 0 ]; then
  echo "FAIL: no man pages under $srcdir/man"
  exit 1
fi
echo "$count pages checked"
exit $status
