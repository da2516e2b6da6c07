"""The router process: registry cache + Router behind gRPC (Router.PickNode) and HTTP."""

from __future__ import annotations

import json
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from seminote.router.v1 import router_pb2 as pb
from seminote.router.v1 import router_pb2_grpc as pb_grpc

from .core import RankedNode, Router
from .model import (
    ErrorKind,
    NodeInfo,
    NodeLoad,
    NodeRecord,
    RouterError,
    invalid,
    validate_load,
)
from .registry import RegistryCache
from .strategies import RouteRequest

log = logging.getLogger(__name__)

#: a load report seen now may have been sampled before the clients sent in this last interval
#: reached the node (heartbeat interval, registry poll, the client's connect): they stay
#: counted as pending
REPORT_LAG_S = 1.0

GRPC_STATUS = {
    ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
}
HTTP_STATUS = {
    ErrorKind.INVALID_ARGUMENT: 400,
    ErrorKind.ALREADY_EXISTS: 409,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.PERMISSION_DENIED: 403,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.FAILED_PRECONDITION: 412,
}
MAX_BODY_BYTES = 16 * 1024
#: registration time to live a node may ask for over HTTP, s
TTL_RANGE_S = (1.0, 300.0)


def _finite(x: float, name: str) -> float:
    if not math.isfinite(x):
        raise invalid(f"{name}={x} must be finite")
    return x


class RouterMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.picks = Counter(
            "router_picks", "Routing answers", ["strategy", "cached"], registry=self.registry
        )
        self.empty = Counter(
            "router_empty_answers", "Answers with no eligible node", registry=self.registry
        )
        self.nodes = Gauge(
            "router_known_nodes", "Nodes in the routing list", registry=self.registry
        )
        self.stale = Gauge(
            "router_registry_stale", "1 while routing from the cached list", registry=self.registry
        )


class RouterService:
    def __init__(self, cache: RegistryCache, router: Router) -> None:
        self.cache = cache
        self.router = router
        self.metrics = RouterMetrics()
        self._seen_updates: dict[str, float] = {}
        self._seen_list: list[NodeRecord] | None = None

    def on_refresh(self) -> None:
        """Nodes that reported load since the last look: forget the sessions we counted.

        The cache swaps in a new list on every successful refresh, so the scan below runs once
        per refresh, not once per routing request."""
        self.metrics.stale.set(1 if self.cache.stale else 0)
        if self.cache.nodes is self._seen_list:
            return
        self._seen_list = self.cache.nodes
        live = set()
        for r in self.cache.nodes:
            nid = r.info.node_id
            live.add(nid)
            if self._seen_updates.get(nid) != r.updated_at:
                self._seen_updates[nid] = r.updated_at
                # the report may predate clients sent in the last REPORT_LAG_S (its heartbeat,
                # this cache's poll and the client's connect): they stay counted
                self.router.load_reported(nid, lag_s=REPORT_LAG_S)
        for nid in [n for n in self._seen_updates if n not in live]:
            del self._seen_updates[nid]
        self.router.stats.forget(live)
        self.metrics.nodes.set(len(self.cache.nodes))

    def pick(self, req: RouteRequest, strategy: str | None) -> tuple[list[RankedNode], str, bool]:
        self.on_refresh()
        ranked = self.router.pick(req, strategy=strategy)
        name = strategy or self.router.default_strategy
        self.metrics.picks.labels(name, str(self.cache.stale).lower()).inc()
        if not ranked:
            self.metrics.empty.inc()
        else:
            self.router.assigned(ranked[0].record.info.node_id)
        return ranked, name, self.cache.stale

    def report(self, *, node_id: str, region: str, rtt_ms: float, success: bool) -> None:
        if not node_id:
            raise invalid("node_id is required")
        if success and not (math.isfinite(rtt_ms) and 0.0 <= rtt_ms <= 60_000.0):
            raise invalid(f"rtt_ms={rtt_ms} is out of range [0, 60000]")
        self.router.report(
            client_key=region or "unknown",
            node_id=node_id,
            rtt_ms=rtt_ms if success else None,
            ok=success,
        )


def request_from_fields(
    *,
    location: tuple[float, float] | None,
    zone: str,
    region: str,
    capabilities: list[str],
    max_nodes: int,
    client_id: str,
) -> RouteRequest:
    lat = lon = None
    if location is not None:
        lat, lon = (
            _finite(location[0], "location.latitude_deg"),
            _finite(location[1], "location.longitude_deg"),
        )
    for name, v in (("zone", zone), ("region", region), ("client_id", client_id)):
        if len(v) > 128:
            raise invalid(f"{name} has {len(v)} characters; at most 128")
    return RouteRequest(
        latitude_deg=lat,
        longitude_deg=lon,
        zone=zone,
        region=region,
        capabilities=frozenset(capabilities),
        max_nodes=max_nodes or 3,
        client_id=client_id,
    )


def ranked_to_json(n: RankedNode) -> dict[str, Any]:
    i = n.record.info
    return {
        "node_id": i.node_id,
        "address": i.address,
        "http_address": i.http_address,
        "provider": i.provider,
        "zone": i.zone,
        "region": i.region,
        "score": round(n.score, 6),
        "expected_rtt_ms": round(n.expected_rtt_ms, 3),
        "active_sessions": n.record.load.active_sessions,
        "capacity": i.capacity,
    }


class RouterGrpc(pb_grpc.RouterServicer):
    def __init__(self, svc: RouterService) -> None:
        self._svc = svc

    async def PickNode(  # noqa: N802 - generated name
        self, request: pb.PickNodeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.PickNodeResponse:
        try:
            loc = None
            if request.HasField("location"):
                loc = (request.location.latitude_deg, request.location.longitude_deg)
            req = request_from_fields(
                location=loc,
                zone=request.zone,
                region=request.region,
                capabilities=list(request.capabilities),
                max_nodes=request.max_nodes,
                client_id=request.client_id,
            )
            ranked, name, stale = self._svc.pick(req, request.strategy or None)
        except RouterError as e:
            await context.abort(GRPC_STATUS[e.kind], e.message)
        return pb.PickNodeResponse(
            nodes=[pb.RankedNode(**ranked_to_json(n)) for n in ranked],
            strategy=name,
            from_cache=stale,
        )

    async def ReportRtt(  # noqa: N802 - generated name
        self, request: pb.ReportRttRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ReportRttResponse:
        try:
            self._svc.report(
                node_id=request.node_id,
                region=request.region,
                rtt_ms=request.rtt_ms,
                success=request.success,
            )
        except RouterError as e:
            await context.abort(GRPC_STATUS[e.kind], e.message)
        return pb.ReportRttResponse()


def _error(e: RouterError) -> web.Response:
    return web.json_response(
        {"error": e.kind.value, "message": e.message}, status=HTTP_STATUS[e.kind]
    )


def _number(body: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    """``body[key]`` (or ``default``): a JSON number in ``[lo, hi]``, else INVALID_ARGUMENT
    naming the field and the range."""
    v = body.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
        raise invalid(f"{key}={v!r} must be a number in [{lo:g}, {hi:g}]")
    return float(v)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise invalid(f"body is {request.content_length} bytes; at most {MAX_BODY_BYTES}")
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise invalid(f"body is over {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError) as e:  # RecursionError: nesting too deep to parse
        raise invalid(f"body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise invalid("body must be a JSON object")
    return body


def build_http(
    svc: RouterService, *, ttl_s: float, health_fn: Callable[[], dict[str, Any]]
) -> web.Application:
    routes = web.RouteTableDef()

    def handle(fn: Callable[..., Any]) -> Callable[[web.Request], Any]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                return await fn(request)  # type: ignore[no-any-return]
            except RouterError as e:
                return _error(e)

        return wrapped

    @routes.get("/api/v1/nodes")
    @handle
    async def list_nodes(request: web.Request) -> web.Response:
        svc.on_refresh()
        return web.json_response(
            {
                "from_cache": svc.cache.stale,
                "nodes": [
                    r.info.to_json() | {"load": asdict(r.load), "updated_at": r.updated_at}
                    for r in svc.cache.nodes
                ],
            }
        )

    @routes.post("/api/v1/nodes/register")
    @handle
    async def register(request: web.Request) -> web.Response:
        body = await _json_body(request)
        token = str(body.pop("token", "") or secrets.token_hex(16))
        ttl = _number(body, "ttl_s", ttl_s, *TTL_RANGE_S)
        body.pop("ttl_s", None)
        info = NodeInfo.from_json(body)
        await svc.cache.registry.register(info, token=token, ttl_s=ttl)
        await svc.cache.refresh()
        return web.json_response(
            {"node_id": info.node_id, "token": token, "ttl_s": ttl}, status=201
        )

    @routes.post("/api/v1/nodes/{node_id}/heartbeat")
    @handle
    async def heartbeat(request: web.Request) -> web.Response:
        body = await _json_body(request)
        raw_load = body.get("load", {})
        if not isinstance(raw_load, dict):
            raise invalid(f"load={raw_load!r} must be an object")
        try:
            load = validate_load(NodeLoad(**raw_load))
        except TypeError as e:
            raise invalid(f"load: {e}") from None
        await svc.cache.registry.heartbeat(
            request.match_info["node_id"],
            token=str(body.get("token", "")),
            load=load,
            ttl_s=_number(body, "ttl_s", ttl_s, *TTL_RANGE_S),
        )
        return web.json_response({"ok": True})

    @routes.delete("/api/v1/nodes/{node_id}")
    @handle
    async def deregister(request: web.Request) -> web.Response:
        await svc.cache.registry.deregister(
            request.match_info["node_id"], token=request.query.get("token")
        )
        await svc.cache.refresh()
        return web.json_response({"deleted": request.match_info["node_id"]})

    @routes.post("/api/v1/route")
    @handle
    async def route(request: web.Request) -> web.Response:
        body = await _json_body(request)
        loc = body.get("location")
        try:
            location = (
                None if loc is None else (float(loc["latitude_deg"]), float(loc["longitude_deg"]))
            )
            req = request_from_fields(
                location=location,
                zone=str(body.get("zone", "")),
                region=str(body.get("region", "")),
                capabilities=[str(c) for c in body.get("capabilities", [])],
                max_nodes=int(body.get("max_nodes", 3)),
                client_id=str(body.get("client_id", "")),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise invalid(f"route request: malformed field ({e})") from None
        strategy = body.get("strategy") or None
        if strategy is not None and not isinstance(strategy, str):
            raise invalid(f"strategy={strategy!r} must be a strategy's name")
        ranked, name, stale = svc.pick(req, strategy)
        return web.json_response(
            {"strategy": name, "from_cache": stale, "nodes": [ranked_to_json(n) for n in ranked]}
        )

    @routes.post("/api/v1/route/report")
    @handle
    async def report(request: web.Request) -> web.Response:
        body = await _json_body(request)
        success = body.get("success", True)
        if not isinstance(success, bool):
            raise invalid(f"success={success!r} must be true or false")
        svc.report(
            node_id=str(body.get("node_id", "")),
            region=str(body.get("region", "")),
            # a failed attempt has no round trip; RouterService.report checks the range
            rtt_ms=_number(body, "rtt_ms", 0.0, -math.inf, math.inf) if success else 0.0,
            success=success,
        )
        return web.json_response({"ok": True})

    @routes.get("/health")
    async def get_health(request: web.Request) -> web.Response:
        return web.json_response(health_fn())

    @routes.get("/metrics")
    async def metrics(request: web.Request) -> web.Response:
        svc.on_refresh()
        return web.Response(
            body=generate_latest(svc.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.add_routes(routes)
    return app


class RouterNode:
    """The whole router process, for the CLI and in-process tests."""

    def __init__(
        self,
        cache: RegistryCache,
        *,
        host: str = "127.0.0.1",
        grpc_port: int = 0,
        http_port: int = 0,
        strategy: str = "weighted",
        ttl_s: float = 3.0,
    ) -> None:
        self.cache = cache
        self.service = RouterService(cache, Router(lambda: cache.nodes, default_strategy=strategy))
        self.server = grpc.aio.server()
        pb_grpc.add_RouterServicer_to_server(RouterGrpc(self.service), self.server)  # type: ignore[no-untyped-call]
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.grpc_port = self.server.add_insecure_port(f"{host}:{grpc_port}")
        self.app = build_http(self.service, ttl_s=ttl_s, health_fn=self._health)
        self._runner = web.AppRunner(self.app, access_log=None)
        self._host, self._http_port = host, http_port
        self.http_port = 0

    def _health(self) -> dict[str, Any]:
        return {
            "status": "SERVING",
            "nodes": len(self.cache.nodes),
            "registry_stale": self.cache.stale,
        }

    async def start(self) -> None:
        await self.cache.start()
        await self.server.start()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._http_port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []  # noqa: SLF001 - bound port
        self.http_port = int(sockets[0].getsockname()[1]) if sockets else self._http_port

    async def stop(self) -> None:
        await self.server.stop(1.0)
        await self._runner.cleanup()
        await self.cache.stop()
        await self.cache.registry.close()
