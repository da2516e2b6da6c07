#!/usr/bin/env bash
# Create .venv and install the project with its dev tools (PyPI only; Debian packages are
# installed per make target by scripts/apt.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 needed"'
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"
# the Basic Pitch model file (Apache-2.0) for the refined note tier; --no-deps: only its files
# are used (onnxruntime runs nmp.onnx), its dependencies would pull TensorFlow
.venv/bin/python -m pip install -q --no-deps "basic-pitch==0.4.0"
