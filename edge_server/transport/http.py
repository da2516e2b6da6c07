"""The node's HTTP endpoint: /health and /metrics (aiohttp)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class HttpEndpoint:
    def __init__(
        self,
        *,
        registry: CollectorRegistry,
        health: Callable[[], dict[str, object]],
        host: str,
        port: int,
    ) -> None:
        self._registry = registry
        self._health = health
        self._host = host
        self._port = port
        self.app = web.Application()
        self.app.router.add_get("/health", self._get_health)
        self.app.router.add_get("/api/v1/health", self._get_health)
        self.app.router.add_get("/metrics", self._get_metrics)
        self._runner = web.AppRunner(self.app, access_log=None)
        self.port = 0

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server  # noqa: SLF001 - aiohttp exposes the bound port only here
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else self._port

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _get_health(self, request: web.Request) -> web.Response:
        body = self._health()
        status = 200 if body.get("status") == "SERVING" else 503
        return web.json_response(body, status=status)

    async def _get_metrics(self, request: web.Request) -> web.Response:
        data = generate_latest(self._registry)
        return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})
