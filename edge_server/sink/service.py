"""``edge-server sink``: the cloud consumer plus its HTTP API.

``GET /api/v1/data``: stored records, filtered by ``session_id``, ``node_id``, ``kind``, and
``since_t_ns`` / ``until_t_ns`` (edge wall clock when the record was made, ns), ``limit`` 1..1000
(default 100), paginated with ``cursor`` (the ``next_cursor`` of the previous page).
``GET /api/v1/sessions/{session_id}/gaps``: the chunk seqs of a session missing from the store.
``GET /metrics`` (Prometheus), ``GET /api/v1/health``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from router.tasks import cancel_and_wait

from ..netutil import start_tcp_site
from .consumer import CloudConsumer
from .db import Db, Query

MAX_LIMIT = 1000
_COUNTERS = {
    "batches_stored": "Batches stored",
    "records_new": "Records stored for the first time",
    "records_duplicate": "Records received again and ignored (idempotent store)",
    "dead_lettered": "Batches sent to the dead-letter stream",
    "failures": "Failed batch deliveries",
    "reclaimed": "Entries reclaimed from crashed consumers (XAUTOCLAIM)",
    "gaps_detected": "Missing batch seqs seen (later refilled from the edge spool)",
}


class _SinkCollector(Collector):
    def __init__(self, consumer: CloudConsumer) -> None:
        self._c = consumer

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        st = self._c.status()
        for name, doc in _COUNTERS.items():
            m = CounterMetricFamily(f"sink_{name}", doc)
            m.add_metric([], float(st[name]))  # type: ignore[arg-type]  # ints from status()
            yield m
        wm = GaugeMetricFamily("sink_watermark_bseq", "Contiguous stored batches", labels=["fwd"])
        for fwd, v in st["watermarks"].items():  # type: ignore[attr-defined]  # dict
            wm.add_metric([fwd], float(v))
        yield wm


def _bad(message: str) -> web.HTTPBadRequest:
    body = json.dumps({"error": "INVALID_ARGUMENT", "message": message})
    return web.HTTPBadRequest(text=body, content_type="application/json")


def _int(request: web.Request, name: str, lo: int, hi: int, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise _bad(f"{name}={raw[:20]!r} is not an integer") from None
    if not lo <= v <= hi:
        raise _bad(f"{name}={v} is out of range [{lo}, {hi}]")
    return v


class SinkService:
    def __init__(self, consumer: CloudConsumer, db: Db, *, host: str, port: int) -> None:
        self.consumer = consumer
        self.db = db
        self.registry = CollectorRegistry()
        self.registry.register(_SinkCollector(consumer))
        app = web.Application()
        app.router.add_get("/api/v1/data", self._data)
        app.router.add_get("/api/v1/sessions/{session_id}/gaps", self._gaps)
        app.router.add_get("/api/v1/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        self._host, self._port = host, port
        self.port = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.port = await start_tcp_site(self._runner, self._host, self._port)
        with contextlib.suppress(RedisError, OSError):  # else the run loop retries
            await self.consumer.ensure_group()
        self._task = asyncio.get_running_loop().create_task(self.consumer.run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task, what="cloud consumer")
        await self._runner.cleanup()
        await self.consumer.close()
        self.db.close()

    async def _data(self, request: web.Request) -> web.Response:
        q = request.query
        max_t = 2**63 - 1
        query = Query(
            session_id=q.get("session_id") or None,
            node_id=q.get("node_id") or None,
            kind=q.get("kind") or None,
            since_t_ns=_int(request, "since_t_ns", 0, max_t, None),
            until_t_ns=_int(request, "until_t_ns", 0, max_t, None),
            after=_int(request, "cursor", 0, max_t, 0) or 0,
            limit=_int(request, "limit", 1, MAX_LIMIT, 100) or 100,
        )
        items, nxt = await asyncio.to_thread(self.db.query, query)
        return web.json_response({"items": items, "next_cursor": nxt})

    async def _gaps(self, request: web.Request) -> web.Response:
        sid = request.match_info["session_id"]
        if not 1 <= len(sid) <= 128:
            raise _bad("session_id: 1..128 characters")
        return web.json_response(await asyncio.to_thread(self.db.gaps, sid))

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "SERVING", "consumer": self.consumer.status()})

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
