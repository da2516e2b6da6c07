"""Composition root: builds the node from its config and injects the infrastructure."""

from __future__ import annotations

import asyncio
import logging

from .config import ServerConfig
from .metrics import PrometheusMetrics
from .pipeline.manager import SessionManager
from .pipeline.offload import CpuOffloader
from .transport.grpc_server import GrpcEndpoint
from .transport.grpc_service import AudioAnalysisService
from .transport.http import HttpEndpoint

log = logging.getLogger(__name__)


class EdgeNode:
    """A running edge node: gRPC analysis service plus HTTP health/metrics."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = PrometheusMetrics()
        self.manager = SessionManager(
            analyzer_config=config.analyzer,
            session_limits=config.session,
            limits=config.manager,
            metrics=self.metrics,
        )
        self.offloader = CpuOffloader(
            inline_max_samples=config.inline_max_samples, max_workers=config.cpu_workers
        )
        self.service = service = AudioAnalysisService(
            manager=self.manager,
            offloader=self.offloader,
            node_id=config.node_id,
            write_stall_timeout_s=config.write_stall_timeout_s,
        )
        self.grpc = GrpcEndpoint(service=service, host=config.host, port=config.grpc_port)
        self.http = HttpEndpoint(
            registry=self.metrics.registry,
            health=self._health,
            host=config.host,
            port=config.http_port,
        )
        self.serving = False
        self._stopped = asyncio.Event()

    def _health(self) -> dict[str, object]:
        return {
            "status": "SERVING" if self.serving else "NOT_SERVING",
            "node_id": self.config.node_id,
            "zone": self.config.zone,
            "active_sessions": self.manager.active_count,
        }

    @property
    def grpc_port(self) -> int:
        return self.grpc.port

    @property
    def http_port(self) -> int:
        return self.http.port

    async def start(self) -> None:
        await self.http.start()
        self.service.start()
        await self.grpc.start()
        self.serving = True
        log.info(
            "edge node %s serving: grpc %s:%d http %s:%d",
            self.config.node_id,
            self.config.host,
            self.grpc_port,
            self.config.host,
            self.http_port,
        )

    async def stop(self, grace_s: float | None = None) -> None:
        """Graceful stop: health NOT_SERVING, refuse new streams, drain for ``grace_s``."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        grace = self.config.shutdown_grace_s if grace_s is None else grace_s
        self.serving = False
        await self.grpc.set_serving(False)
        log.info("draining %d session(s) for up to %.1f s", self.manager.active_count, grace)
        await self.grpc.stop(grace)
        await self.service.stop()
        await self.http.stop()
        self.offloader.shutdown()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()
