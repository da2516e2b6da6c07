#!/usr/bin/env bash
# Regenerate the checked-in gRPC/protobuf code. The only generator; CI runs it and diffs.
# Requires the pinned grpcio-tools from pyproject.toml ([project.optional-dependencies] dev).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
want=$(sed -n 's/.*"grpcio-tools==\([0-9.]*\)".*/\1/p' pyproject.toml | head -1)
have=$($PY -c 'import importlib.metadata as m; print(m.version("grpcio-tools"))')
if [ "$want" != "$have" ]; then
  echo "gen_proto: grpcio-tools $have installed, pyproject pins $want" >&2
  exit 1
fi
OUT=${OUT:-proto}
mkdir -p "$OUT"
for f in proto/seminote/*/v1/*.proto; do
  $PY -m grpc_tools.protoc -Iproto --python_out="$OUT" --pyi_out="$OUT" --grpc_python_out="$OUT" "$f"
done
