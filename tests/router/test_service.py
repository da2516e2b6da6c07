"""The router's HTTP and gRPC APIs in process, over a real Redis registry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
from seminote.router.v1 import router_pb2 as pb
from seminote.router.v1 import router_pb2_grpc as pb_grpc

from router.backends.redis_registry import RedisRegistry
from router.backends.static_registry import StaticRegistry
from router.registry import RegistryCache
from router.service import RouterNode
from tests.redis_server import RedisServer
from tests.router.helpers import info


@pytest.fixture
async def router_node(redis_server: RedisServer) -> AsyncIterator[RouterNode]:
    node = RouterNode(RegistryCache(RedisRegistry(redis_server.url), poll_s=0.1))
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


def _body(node_id: str = "n1", **kw: object) -> dict[str, object]:
    return info(node_id).to_json() | kw


async def test_register_list_route_deregister(router_node: RouterNode) -> None:
    base = f"http://127.0.0.1:{router_node.http_port}/api/v1"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/nodes/register", json=_body("n1")) as r:
            assert r.status == 201
            token = (await r.json())["token"]
        async with http.post(
            f"{base}/nodes/register",
            json=_body("n2", address="127.0.0.1:5002", latitude_deg=51.5, longitude_deg=0.0),
        ) as r:
            assert r.status == 201
        async with http.get(f"{base}/nodes") as r:
            body = await r.json()
            assert sorted(n["node_id"] for n in body["nodes"]) == ["n1", "n2"]
        async with http.post(
            f"{base}/route",
            json={
                "location": {"latitude_deg": 51.0, "longitude_deg": 0.1},
                "strategy": "proximity",
            },
        ) as r:
            assert [n["node_id"] for n in (await r.json())["nodes"]] == ["n2", "n1"]
        async with http.post(
            f"{base}/nodes/n1/heartbeat", json={"token": token, "load": {"active_sessions": 3}}
        ) as r:
            assert r.status == 200
        async with http.delete(f"{base}/nodes/n1", params={"token": "wrong"}) as r:
            assert r.status == 403
        async with http.delete(f"{base}/nodes/n1", params={"token": token}) as r:
            assert r.status == 200
        async with http.get(f"{base}/nodes") as r:
            assert [n["node_id"] for n in (await r.json())["nodes"]] == ["n2"]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{router_node.grpc_port}") as ch:
        stub = pb_grpc.RouterStub(ch)
        resp = await stub.PickNode(
            pb.PickNodeRequest(location=pb.Location(latitude_deg=51.0, longitude_deg=0.0))
        )
        assert [n.node_id for n in resp.nodes] == ["n2"] and not resp.from_cache
        await stub.ReportRtt(
            pb.ReportRttRequest(node_id="n2", region="eu", rtt_ms=12.5, success=True)
        )
        assert router_node.service.router.stats.observed_rtt_ms("eu", "n2") == 12.5


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (_body(capabilities=["onsets", "x-ray"]), 400, "node.capabilities has unknown x-ray"),
        (_body(latitude_deg=123.0), 400, "node.latitude_deg=123.0 is out of range [-90, 90]"),
        (_body(metadata={"k": "v" * 5000}), 400, "node.metadata is"),
        (_body(ttl_s=0.1), 400, "ttl_s=0.1 must be a number in [1, 300]"),
        (_body(ttl_s="30"), 400, "ttl_s='30' must be a number in [1, 300]"),  # was a 500
        (_body(ttl_s=None), 400, "ttl_s=None must be a number in [1, 300]"),
        (_body(capacity="lots"), 400, "node: malformed field"),
        (_body(capacity=float("inf")), 400, "node: malformed field"),  # was a 500
    ],
)
async def test_bad_registrations_are_refused(
    router_node: RouterNode, body: dict[str, object], status: int, needle: str
) -> None:
    url = f"http://127.0.0.1:{router_node.http_port}/api/v1/nodes/register"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as r:
        assert r.status == status
        assert needle in (await r.json())["message"]
    assert router_node.cache.nodes == []


async def test_duplicate_id_from_another_address_and_oversized_body(
    router_node: RouterNode,
) -> None:
    base = f"http://127.0.0.1:{router_node.http_port}/api/v1"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/nodes/register", json=_body("n1")) as r:
            assert r.status == 201
        async with http.post(f"{base}/nodes/register", json=_body("n1", address="10.6.6.6:1")) as r:
            assert r.status == 409
            assert "registered from 127.0.0.1:5001" in (await r.json())["message"]
        async with http.post(f"{base}/nodes/register", data=b"{" + b" " * 20000 + b"}") as r:
            assert r.status in (400, 413)
        async with http.post(f"{base}/route", data=b"not json") as r:
            assert r.status == 400 and "not JSON" in (await r.json())["message"]
        async with http.post(f"{base}/route", data=b"[" * 5000) as r:  # too deep: was a 500
            assert r.status == 400 and "not JSON" in (await r.json())["message"]
        async with http.get(f"{base}/nodes") as r:
            nodes = (await r.json())["nodes"]
    assert [(n["node_id"], n["address"]) for n in nodes] == [("n1", "127.0.0.1:5001")]


@pytest.mark.parametrize(
    ("req", "needle"),
    [
        (
            pb.PickNodeRequest(location=pb.Location(latitude_deg=0.0, longitude_deg=200.0)),
            "location.longitude_deg=200.0",
        ),
        (
            pb.PickNodeRequest(capabilities=["onsets", "teleport"]),
            "capabilities has unknown teleport",
        ),
        (pb.PickNodeRequest(max_nodes=99), "max_nodes=99 is out of range [1, 50]"),
        (pb.PickNodeRequest(strategy="astrology"), "strategy='astrology' unknown"),
    ],
)
async def test_bad_pick_requests(
    router_node: RouterNode, req: pb.PickNodeRequest, needle: str
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{router_node.grpc_port}") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await pb_grpc.RouterStub(ch).PickNode(req)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in (e.value.details() or "")


async def test_static_registry(tmp_path: Path) -> None:
    path = tmp_path / "fleet.json"
    path.write_text(
        json.dumps([info("s1").to_json(), info("s2", address="127.0.0.1:5002").to_json()])
    )
    reg = StaticRegistry(path)
    assert sorted(r.info.node_id for r in await reg.list_nodes()) == ["s1", "s2"]
    from router.model import NodeLoad, RouterError

    await reg.heartbeat("s1", token="", load=NodeLoad(active_sessions=4), ttl_s=3)
    assert {r.info.node_id: r.load.active_sessions for r in await reg.list_nodes()}["s1"] == 4
    with pytest.raises(RouterError, match="fixed by its file"):
        await reg.register(info("s3", address="127.0.0.1:5003"), token="", ttl_s=3)


async def test_bad_heartbeats_reports_and_routes_are_refused_by_name(
    router_node: RouterNode,
) -> None:
    """Fields of the wrong type or out of range are 400s naming the field (they were 500s:
    float() of a string, dict() of a string, int() of an infinite ttl or max_nodes)."""
    base = f"http://127.0.0.1:{router_node.http_port}/api/v1"
    cases: list[tuple[str, str, object]] = [
        ("nodes/n1/heartbeat", "ttl_s='abc' must be a number in [1, 300]", {"ttl_s": "abc"}),
        ("nodes/n1/heartbeat", "ttl_s=1e+300 must be a number in [1, 300]", {"ttl_s": 1e300}),
        ("nodes/n1/heartbeat", "load='x' must be an object", {"load": "x"}),
        ("nodes/n1/heartbeat", "load.active_sessions='5' must be an integer >= 0",
         {"load": {"active_sessions": "5"}}),
        ("nodes/n1/heartbeat", "load.cpu_fraction=[] must be a number",
         {"load": {"cpu_fraction": []}}),
        ("route/report", "rtt_ms='fast' must be a number", {"node_id": "n1", "rtt_ms": "fast"}),
        ("route/report", "success='no' must be true or false", {"node_id": "n1", "success": "no"}),
        ("route/report", "rtt_ms=-5.0 is out of range [0, 60000]", {"node_id": "n1", "rtt_ms": -5}),
    ]  # fmt: skip
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/nodes/register", json=_body("n1")) as r:
            token = (await r.json())["token"]
        for path, needle, body in cases:
            if isinstance(body, dict) and path.endswith("heartbeat"):
                body = {"token": token, **body}
            async with http.post(f"{base}/{path}", json=body) as r:
                assert r.status == 400, (path, body, r.status)
                assert needle in (await r.json())["message"], (path, body)
        async with http.post(f"{base}/route", json={"strategy": ["proximity"]}) as r:
            assert r.status == 400
            assert "strategy=['proximity'] must be a strategy's name" in (await r.json())["message"]
        # JSON has no infinity, but Python's parser reads one
        async with http.post(f"{base}/route", data=b'{"max_nodes": Infinity}') as r:
            assert r.status == 400
            assert "malformed field" in (await r.json())["message"]
        async with http.post(
            f"{base}/nodes/n1/heartbeat", json={"token": token, "load": {"active_sessions": 3}}
        ) as r:
            assert r.status == 200  # a good heartbeat still works
