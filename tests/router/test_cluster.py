"""Real processes: Redis, an edge-router and edge-server nodes that register themselves."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from seminote.edge.v1 import analysis_pb2 as pb
from seminote.edge.v1 import analysis_pb2_grpc as pb_grpc

from tests.procs import edge_node, reap
from tests.procs import spawn as _spawn
from tests.redis_server import RedisServer
from tests.transport.helpers import config

EXCERPT = Path(__file__).resolve().parents[2] / "clients" / "data" / "mozart_k545_mvt1_20s.wav"
TTL_S = 3.0
HEARTBEAT_S = 1.0


async def _node(
    redis_url: str, node_id: str, zone: str, lat: float, lon: float, *extra: str
) -> Any:
    return await edge_node(
        node_id,
        "--zone",
        zone,
        "--provider",
        "aws",
        "--region",
        zone,
        "--lat",
        str(lat),
        "--lon",
        str(lon),
        "--registry",
        redis_url,
        "--ttl-s",
        str(TTL_S),
        "--heartbeat-s",
        str(HEARTBEAT_S),
        *extra,
    )


class Cluster:
    def __init__(self, redis: RedisServer) -> None:
        self.redis = redis
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.http: aiohttp.ClientSession | None = None
        self.router_http = 0

    async def start(self) -> None:
        router, ports = await _spawn(
            "router.cli",
            "serve",
            "--registry",
            self.redis.url,
            "--grpc-port",
            "0",
            "--http-port",
            "0",
            "--poll-s",
            "0.2",
        )
        self.procs["router"] = router
        self.router_http = ports["http"]
        started = await asyncio.gather(
            _node(self.redis.url, "edge-a", "zone-a", 40.7, -74.0),
            _node(self.redis.url, "edge-b", "zone-b", 41.9, -87.6),
            _node(self.redis.url, "edge-c", "zone-c", 50.1, 8.7),
        )
        for nid, (proc, _) in zip(("edge-a", "edge-b", "edge-c"), started, strict=True):
            self.procs[nid] = proc
        self.http = aiohttp.ClientSession()

    async def route(self) -> tuple[set[str], bool]:
        assert self.http is not None
        url = f"http://127.0.0.1:{self.router_http}/api/v1/route"
        async with self.http.post(url, json={"max_nodes": 10}) as r:
            body = await r.json()
            assert r.status == 200, body
        return {n["node_id"] for n in body["nodes"]}, bool(body["from_cache"])

    async def wait_for(self, want: set[str], timeout_s: float, *, fresh: bool = True) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            ids, cached = await self.route()
            if ids == want and (not fresh or not cached):
                return time.monotonic() - t0
            await asyncio.sleep(0.05)
        raise AssertionError(f"routing never gave {want} (last {await self.route()})")

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        for p in self.procs.values():
            if p.returncode is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            await reap(p)


@pytest.fixture
async def cluster(redis_server: RedisServer) -> AsyncIterator[Cluster]:
    c = Cluster(redis_server)
    try:
        await c.start()
        await c.wait_for({"edge-a", "edge-b", "edge-c"}, 15)
        yield c
    finally:
        await c.stop()


async def test_killed_node_leaves_within_ttl_and_new_node_joins_within_a_heartbeat(
    cluster: Cluster,
) -> None:
    victim = cluster.procs["edge-b"]
    victim.send_signal(signal.SIGKILL)
    await victim.wait()
    gone_s = await cluster.wait_for({"edge-a", "edge-c"}, 10)
    print(f"killed node out of routing answers after {gone_s:.2f} s (TTL {TTL_S} s)")
    assert gone_s <= TTL_S + 1.0 <= 5.0
    proc, _ = await _node(cluster.redis.url, "edge-d", "zone-d", 35.7, 139.7)
    cluster.procs["edge-d"] = proc  # ready line printed: registration runs right after it
    join_s = await cluster.wait_for({"edge-a", "edge-c", "edge-d"}, 5)
    print(f"new node in routing answers {join_s:.2f} s after it reported ready")
    assert join_s <= HEARTBEAT_S


async def test_routing_survives_registry_loss_and_nodes_reregister(cluster: Cluster) -> None:
    cluster.redis.kill()
    t0 = time.monotonic()
    for _ in range(20):  # answers keep coming, from the cached list
        ids, cached = await cluster.route()
        assert ids == {"edge-a", "edge-b", "edge-c"}
        await asyncio.sleep(0.1)
    assert cached
    await asyncio.sleep(max(0.0, TTL_S + 1 - (time.monotonic() - t0)))  # longer than a TTL
    ids, cached = await cluster.route()
    assert cached and ids == {"edge-a", "edge-b", "edge-c"}
    cluster.redis.start()  # same port, empty: every registration is gone
    back_s = await cluster.wait_for({"edge-a", "edge-b", "edge-c"}, 30)
    print(f"all live nodes re-registered {back_s:.2f} s after the registry returned")
    assert back_s <= 30


async def test_router_balances_the_workers_of_a_node(redis_server: RedisServer) -> None:
    """One node with --workers 2: each worker registers a port of its own, so 12 sessions that
    ask the router first and then stay open are split 6 / 6 (±1) between the workers, where the
    shared port's kernel hash split 18 sessions up to 5 / 13 (docs/capacity.md)."""
    router, rports = await _spawn(
        "router.cli", "serve", "--registry", redis_server.url, "--grpc-port", "0",
        "--http-port", "0", "--poll-s", "0.2",
    )  # fmt: skip
    # --capacity: what a worker really holds (BENCHMARKS: ~10 on this VM); with the default
    # (max_sessions, 1000) 12 sessions are ~1 % of it and the router's balance term is idle
    node, _ = await edge_node(
        "wb", "--workers", "2", "--registry", redis_server.url, "--heartbeat-s", "0.5",
        "--capacity", "10",
    )  # fmt: skip
    channels: list[grpc.aio.Channel] = []
    calls = []
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{rports['http']}/api/v1/route"

            async def route() -> dict[str, Any]:
                async with http.post(url, json={"max_nodes": 2}) as r:
                    body: dict[str, Any] = await r.json()
                    assert r.status == 200, body
                    return body

            for _ in range(100):
                if len((await route())["nodes"]) == 2:
                    break
                await asyncio.sleep(0.1)
            for _ in range(12):
                first = (await route())["nodes"][0]
                ch = grpc.aio.insecure_channel(first["address"])
                channels.append(ch)
                call = pb_grpc.AudioAnalysisStub(ch).Analyze()  # type: ignore[no-untyped-call]
                await call.write(config(analyses=[pb.ANALYSIS_ONSETS]))
                started = await call.read()
                assert started.started.node_id == first["node_id"]
                calls.append(call)
            per_worker: dict[str, int] = {}
            for _ in range(50):  # the workers' heartbeats carry their session counts
                await asyncio.sleep(0.2)
                per_worker = {n["node_id"]: n["active_sessions"] for n in (await route())["nodes"]}
                if sum(per_worker.values()) == 12:
                    break
            print(f"12 routed sessions per worker: {per_worker}")
            assert sorted(per_worker) == ["wb-w0", "wb-w1"]
            assert sum(per_worker.values()) == 12 and max(per_worker.values()) <= 7, per_worker
    finally:
        for call in calls:
            call.cancel()
        for ch in channels:
            await ch.close()
        for p in (node, router):
            p.send_signal(signal.SIGTERM)
            await reap(p)


@pytest.mark.slow
async def test_routed_client_resumes_on_the_routers_next_node(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """`edge-client stream --router`: the router's choice first, then the nodes it ranked
    after it. kill -9 the node serving the stream mid-file: the stream resumes on the other
    (both share the Redis session store), every chunk answered once."""
    router, rports = await _spawn(
        "router.cli", "serve", "--registry", redis_server.url, "--grpc-port", "0",
        "--http-port", "0", "--poll-s", "0.2",
    )  # fmt: skip
    nodes = await asyncio.gather(
        *(
            _node(redis_server.url, nid, "zone-a", 40.7, -74.0, "--store", redis_server.url)
            for nid in ("edge-x", "edge-y")
        )
    )
    procs = {"edge-x": nodes[0][0], "edge-y": nodes[1][0]}
    http_ports = {"edge-x": nodes[0][1]["http"], "edge-y": nodes[1][1]["http"]}
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{rports['http']}/api/v1/route"
            for _ in range(300):  # both registered
                async with http.post(url, json={"max_nodes": 10}) as r:
                    if len((await r.json())["nodes"]) == 2:
                        break
                await asyncio.sleep(0.05)
            client = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "clients.cli", "stream", str(EXCERPT), "--realtime",
                "--router", f"127.0.0.1:{rports['grpc']}", "--json",
                stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            await asyncio.sleep(8.0)
            serving = []
            for nid, port in http_ports.items():
                async with http.get(f"http://127.0.0.1:{port}/api/v1/edge/status") as r:
                    if (await r.json())["active_sessions"] == 1:
                        serving.append(nid)
            assert len(serving) == 1, serving
            procs[serving[0]].kill()
            out, _ = await asyncio.wait_for(client.communicate(), 60)
        assert client.returncode == 0
        report = json.loads(out.decode().strip().splitlines()[-1])
    finally:
        for p in [router, *procs.values()]:
            if p.returncode is None:
                p.send_signal(signal.SIGTERM)
            await reap(p)
    other = ({"edge-x", "edge-y"} - set(serving)).pop()
    assert report["resume"]["nodes"] == [serving[0], other], report["resume"]
    assert report["resume"]["resumes"] == 1
    audit = report["result_seqs"]
    assert audit["duplicates"] == 0 and audit["missing"] == 0 and audit["count"] == 862, audit
