#!/usr/bin/env bash
# Static checks: generated code up to date, ruff lint + format, mypy strict.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
OUT="$tmp" PYTHON=$BIN/python ./scripts/gen_proto.sh
stale=0
while IFS= read -r f; do
  rel=${f#"$tmp"/}
  if ! cmp -s "$f" "proto/$rel"; then
    echo "lint: proto/$rel is not what scripts/gen_proto.sh generates (run: make proto)" >&2
    stale=1
  fi
done < <(find "$tmp" -name '*_pb2*' -type f)
[ "$stale" = 0 ]
$BIN/ruff check .
$BIN/ruff format --check .
$BIN/mypy
