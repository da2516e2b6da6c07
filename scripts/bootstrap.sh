#!/usr/bin/env bash
# Create .venv and install the project with its dev tools. System packages come from apt
# when they are missing and we are root (CI and these machines); otherwise we say what to install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

need_apt=()
for pkg in ${APT_PACKAGES:-}; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "bootstrap: please install: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
fi

"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 needed"'
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"
