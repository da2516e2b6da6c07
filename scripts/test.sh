#!/usr/bin/env bash
# The project's test command (what `make test` and CI run): static checks, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/lint.sh
exec .venv/bin/python -m pytest "$@"
