"""Composition root: builds the node from its config and injects the infrastructure."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router.agent import NodeAgent
from router.model import NodeInfo, NodeLoad
from router.registry import open_registry
from router.tasks import cancel_and_wait

from .config import ServerConfig
from .metrics import PrometheusMetrics
from .pipeline.batcher import ChunkBatcher
from .pipeline.manager import SessionManager
from .pipeline.offload import CpuOffloader
from .pipeline.refined_tier import RefinedPool
from .runtime import heap_in_use_bytes, python_blocks, rss_mb
from .store import open_store

if TYPE_CHECKING:
    from .sync.forwarder import Forwarder
from .transport.grpc_server import GrpcEndpoint
from .transport.grpc_service import AudioAnalysisService
from .transport.http import HttpEndpoint
from .transport.webrtc import WebRtcGateway

# The browser client ships in the clients package (clients/web/), served at "/".
WEB_ROOT = Path(__file__).resolve().parent.parent / "clients" / "web"

log = logging.getLogger(__name__)


async def _bounded(coro: Coroutine[Any, Any, None], timeout_s: float, what: str) -> None:
    """Run a shutdown step for at most ``timeout_s``; a step that does not finish (even when
    cancelled) is abandoned with a warning so the node still exits."""
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        log.warning("%s did not finish in %.1f s; cancelling it", what, timeout_s)
        await cancel_and_wait(task, what=what, give_up_s=1.0)  # logs if it is abandoned
    elif task.exception() is not None:
        log.warning("%s failed: %r", what, task.exception())


class EdgeNode:
    """A running edge node: gRPC analysis service plus HTTP health/metrics."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = PrometheusMetrics()
        st = config.store
        self.store = open_store(
            st.url,
            node_id=config.node_id,
            ttl_s=st.ttl_s,
            log_keep=st.results_log_keep,
            commit_timeout_s=st.commit_timeout_s,
            forwarded=bool(config.sync.cloud_url),
        )
        self.refined_pool: RefinedPool | None = None
        if config.refined_workers > 0:
            self.refined_pool = RefinedPool(workers=config.refined_workers)
        self.batcher = ChunkBatcher(config.batcher, metrics=self.metrics)
        self.manager = SessionManager(
            load=self.batcher,
            refined_pool=self.refined_pool,
            analyzer_config=config.analyzer,
            session_limits=config.session,
            limits=config.manager,
            metrics=self.metrics,
            store=self.store,
            node_id=config.node_id,
        )
        # the store's encoding of each result runs on the batch worker, not the event loop
        self.batcher.prepare = self.manager.durability.prepare
        self.forwarder: Forwarder | None = None
        sy = config.sync
        if sy.cloud_url:  # the forwarder (and its crypto) loads only when configured
            from .sync.codec import parse_key
            from .sync.forwarder import Forwarder, ForwarderConfig

            key = parse_key(Path(sy.key_file).read_text()) if sy.key_file else None
            self.forwarder = Forwarder(
                self.store,
                ForwarderConfig(
                    cloud_url=sy.cloud_url,
                    forwarder_id=config.node_id,
                    spool_dir=Path(sy.spool_dir or f"spool/{config.node_id}"),
                    spool_max_bytes=int(sy.spool_max_mb * 2**20),
                    key=key,
                    batch_records=sy.batch_records,
                    bandwidth_bytes_per_s=sy.bandwidth_bytes_per_s,
                    resend_after_s=sy.resend_after_s,
                    stale_resend_s=sy.stale_resend_s,
                ),
            )
        self.offloader = CpuOffloader(
            inline_max_samples=config.inline_max_samples, max_workers=config.cpu_workers
        )
        self.service = service = AudioAnalysisService(
            manager=self.manager,
            offloader=self.offloader,
            batcher=self.batcher,
            node_id=config.node_id,
            write_stall_timeout_s=config.write_stall_timeout_s,
            read_idle_timeout_s=config.read_idle_timeout_s,
            credit_chunks=config.credit_chunks,
        )
        self.grpc = GrpcEndpoint(
            service=service,
            host=config.host,
            port=config.grpc_port,
            reuse_port=config.reuse_port,
            own_port=config.own_grpc_port,
        )
        self.gateway = WebRtcGateway(
            manager=self.manager,
            batcher=self.batcher,
            node_id=config.node_id,
            media_timeout_s=config.webrtc_media_timeout_s,
            max_peers=config.webrtc_max_peers,
            jitter_prefetch_packets=config.webrtc_jitter_prefetch_packets,
        )
        self.http = HttpEndpoint(
            registry=self.metrics.registry,
            health=self._health,
            status=self._status,
            manager=self.manager,
            offloader=self.offloader,
            gateway=self.gateway,
            web_root=WEB_ROOT,
            host=config.host,
            port=config.http_port,
        )
        self._started_at = time.monotonic()
        self.serving = False
        self._stopped = asyncio.Event()
        self.agent: NodeAgent | None = None
        self._cpu_mark = (time.process_time(), time.monotonic())

    def _load(self) -> NodeLoad:
        cpu, wall = time.process_time(), time.monotonic()
        d_cpu, d_wall = cpu - self._cpu_mark[0], wall - self._cpu_mark[1]
        self._cpu_mark = (cpu, wall)
        return NodeLoad(
            active_sessions=self.manager.active_count,
            cpu_fraction=min(64.0, d_cpu / d_wall) if d_wall > 0 else 0.0,
            p95_latency_ms=self.metrics.recent_p95_ms(),
        )

    def node_info(self) -> NodeInfo:
        c, r = self.config, self.config.registry
        host = c.host if c.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return NodeInfo(
            node_id=c.node_id,
            # a worker of --workers N registers its own port (routers balance the workers)
            address=r.advertise or f"{host}:{self.grpc.own_port or self.grpc_port}",
            provider=r.provider,
            zone=c.zone,
            region=r.region,
            latitude_deg=r.latitude_deg,
            longitude_deg=r.longitude_deg,
            capabilities=frozenset(r.capabilities),
            capacity=r.capacity or c.manager.max_sessions,
            cost_per_hour=r.cost_per_hour,
            http_address=f"{host}:{self.http_port}",
        )

    def _health(self) -> dict[str, object]:
        return {
            "status": "SERVING" if self.serving else "NOT_SERVING",
            "node_id": self.config.node_id,
            "zone": self.config.zone,
            "active_sessions": self.manager.active_count,
        }

    def _status(self) -> dict[str, object]:
        load = self._load()
        heap_b = heap_in_use_bytes()
        return {
            "node_id": self.config.node_id,
            "zone": self.config.zone,
            "serving": self.serving,
            "uptime_s": round(time.monotonic() - self._started_at, 3),
            "active_sessions": load.active_sessions,
            "max_sessions": self.config.manager.max_sessions,
            "webrtc_peers": len(self.gateway.peers),
            "load": {"cpu_fraction": round(load.cpu_fraction, 4)},
            "latency": {"server_p95_ms": round(load.p95_latency_ms, 4)},
            "store": {
                "kind": self.store.kind,
                "appended_records": self.store.appended_records,
                "checksum": str(self.store.checksum),
                "errors": self.manager.durability.store_errors,
            },
            "sync": self.forwarder.status() if self.forwarder else None,
            "process": {
                "threads": threading.active_count(),
                "asyncio_tasks": len(asyncio.all_tasks()),
                "rss_mb": round(rss_mb(), 2),
                "heap_in_use_mb": None if heap_b is None else round(heap_b / 2**20, 3),
                "python_blocks": python_blocks(),
            },
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
        if self.forwarder is not None:
            await self.forwarder.start()
        self.serving = True
        # Everything built so far (modules, servers, plans) lives as long as the process: move it
        # out of the collector's reach so full collections (see transport/webrtc.py) stay short.
        gc.freeze()
        r = self.config.registry
        if r.url:
            self.agent = NodeAgent(
                open_registry(r.url),
                self.node_info(),
                self._load,
                ttl_s=r.ttl_s,
                heartbeat_s=r.heartbeat_s,
            )
            await self.agent.start()
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
        if self.agent is not None:
            await self.agent.stop(deregister=True)  # routers stop sending clients here first
        await self.grpc.set_serving(False)
        log.info("draining %d session(s) for up to %.1f s", self.manager.active_count, grace)
        await self.grpc.stop(grace)
        await self.gateway.close_all()
        await self.service.stop()
        await self.http.stop()
        if self.forwarder is not None:
            await _bounded(self.forwarder.stop(), 5.0, "forwarder stop")
        await _bounded(self.store.close(), 5.0, "session store close")
        self.offloader.shutdown()
        self.batcher.shutdown()
        if self.refined_pool is not None:
            self.refined_pool.shutdown()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()
