#!/usr/bin/env bash
# A local cluster on loopback: Redis, an edge-router and 3 edge nodes labelled as zones of
# three providers. Ctrl-C (or SIGTERM) stops everything. Ports: router gRPC 50061 / HTTP 8081,
# nodes gRPC 50071-50073 / HTTP 8091-8093, Redis 6390 (override with REDIS_PORT).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
RUN=.run/cluster
mkdir -p "$RUN"
REDIS_PORT=${REDIS_PORT:-6390}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -f "$RUN/redis.pid" ]; then kill "$(cat "$RUN/redis.pid")" 2>/dev/null || true; fi
}
trap cleanup EXIT INT TERM
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --daemonize yes \
  --pidfile "$PWD/$RUN/redis.pid" --logfile "$PWD/$RUN/redis.log" --dir "$PWD/$RUN"
REG="redis://127.0.0.1:$REDIS_PORT/0"
$BIN/edge-router serve --registry "$REG" --grpc-port 50061 --http-port 8081 >"$RUN/router.log" 2>&1 &
pids+=($!)
node() {  # id zone provider region lat lon port http capacity
  $BIN/edge-server serve --node-id "$1" --zone "$2" --provider "$3" --region "$4" --lat "$5" \
    --lon "$6" --grpc-port "$7" --http-port "$8" --capacity "$9" --registry "$REG" \
    >"$RUN/$1.log" 2>&1 &
  pids+=($!)
}
node edge-nyc us-east-1-wl1-nyc-wlz-1 aws us-east 40.71 -74.01 50071 8091 200
node edge-chi chicago-edge-zone azure us-central 41.88 -87.63 50072 8092 120
node edge-fra europe-west3-fra-edge gcp eu-central 50.11 8.68 50073 8093 300
sleep 2
echo "cluster up: router grpc 127.0.0.1:50061 http http://127.0.0.1:8081/api/v1/nodes"
curl -s http://127.0.0.1:8081/api/v1/nodes | "$BIN/python" -c \
  'import json,sys; [print("  ", n["node_id"], n["zone"], n["address"]) for n in json.load(sys.stdin)["nodes"]]'
echo "try: $BIN/edge-client stream clients/data/mozart_k545_mvt1_20s.wav --router 127.0.0.1:50061 --lat 40.7 --lon -74 --region us-east --realtime"
if [ "${CLUSTER_ONESHOT:-0}" = 1 ]; then exit 0; fi
wait
