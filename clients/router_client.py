"""Ask a router where to connect, try its ranked nodes in order, report what was measured."""

from __future__ import annotations

import time
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from seminote.router.v1 import router_pb2 as pb
from seminote.router.v1 import router_pb2_grpc as pb_grpc

from .analysis_client import AnalysisClient


@dataclass(frozen=True)
class RoutedNode:
    node_id: str
    address: str
    zone: str
    expected_rtt_ms: float


@dataclass(frozen=True, kw_only=True)
class RouteQuery:
    latitude_deg: float | None = None
    longitude_deg: float | None = None
    zone: str = ""
    region: str = ""
    capabilities: tuple[str, ...] = ("onsets",)
    max_nodes: int = 3
    client_id: str = ""


class RouterClient:
    def __init__(self, target: str) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        # generated *_pb2_grpc code carries no annotations
        self._stub = pb_grpc.RouterStub(self._channel)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self._channel.close()

    async def pick(self, q: RouteQuery) -> tuple[list[RoutedNode], bool]:
        req = pb.PickNodeRequest(
            zone=q.zone,
            region=q.region,
            capabilities=list(q.capabilities),
            max_nodes=q.max_nodes,
            client_id=q.client_id,
        )
        if q.latitude_deg is not None and q.longitude_deg is not None:
            req.location.latitude_deg = q.latitude_deg
            req.location.longitude_deg = q.longitude_deg
        resp: pb.PickNodeResponse = await self._stub.PickNode(req, timeout=5.0)
        nodes = [RoutedNode(n.node_id, n.address, n.zone, n.expected_rtt_ms) for n in resp.nodes]
        return nodes, resp.from_cache

    async def report(self, node_id: str, region: str, rtt_ms: float, ok: bool) -> None:
        await self._stub.ReportRtt(
            pb.ReportRttRequest(node_id=node_id, region=region, rtt_ms=rtt_ms, success=ok),
            timeout=5.0,
        )


async def _probe(client: AnalysisClient, timeout_s: float) -> float:
    """Connect and round-trip a health check; returns the RTT of the check in ms."""
    await client.wait_ready(timeout_s)
    stub = health_pb2_grpc.HealthStub(client.channel)
    t0 = time.perf_counter()
    resp = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
    rtt_ms = (time.perf_counter() - t0) * 1000.0
    if resp.status != health_pb2.HealthCheckResponse.SERVING:
        raise ConnectionError("node is not serving")
    return rtt_ms


async def connect_routed(
    router_target: str, q: RouteQuery, *, connect_timeout_s: float = 2.0
) -> tuple[RoutedNode, float, list[RoutedNode]]:
    """The first ranked node that answers a probe, its RTT (ms), and the nodes ranked after it
    (to fall back on mid-stream); RTTs and failures are reported to the router."""
    router = RouterClient(router_target)
    try:
        nodes, _ = await router.pick(q)
        errors = []
        for k, node in enumerate(nodes):
            try:
                async with AnalysisClient(node.address) as client:
                    rtt = await _probe(client, connect_timeout_s)
            except (TimeoutError, grpc.aio.AioRpcError, ConnectionError) as e:
                errors.append(f"{node.node_id}: {type(e).__name__}")
                await router.report(node.node_id, q.region or q.zone, 0.0, False)
                continue
            await router.report(node.node_id, q.region or q.zone, rtt, True)
            return node, rtt, nodes[k + 1 :]
        raise ConnectionError(
            f"no edge node reachable (router offered {len(nodes)}: {'; '.join(errors) or '-'})"
        )
    finally:
        await router.close()
