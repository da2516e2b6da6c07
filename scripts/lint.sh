#!/usr/bin/env bash
# Static checks: generated code up to date, ruff lint + format, mypy strict.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PYTHON=$BIN/python ./scripts/gen_proto.sh
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  if ! git diff --quiet -- proto/; then
    echo "lint: generated code in proto/ differs from the checked-in files:" >&2
    git --no-pager diff --stat -- proto/ >&2
    exit 1
  fi
fi
$BIN/ruff check .
$BIN/ruff format --check .
$BIN/mypy
