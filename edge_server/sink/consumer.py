"""Cloud consumer: reads the batch stream with a consumer group and stores the records.

* New entries: ``XREADGROUP >``. Entries another consumer took and left pending for
  ``claim_idle_s`` (it crashed) are taken over with ``XAUTOCLAIM``.
* A batch is stored in one DB transaction (idempotent), then acknowledged and deleted from the
  stream (``XACK`` + ``XDEL``); the stream therefore only holds unprocessed batches.
* A batch that fails (cannot be authenticated, decoded or stored) stays pending and is retried
  when reclaimed; on its ``max_deliveries``-th delivery it goes to the dead-letter stream
  ``seminote:cloud:dead`` with the error, and is acknowledged.
* Per forwarder, the consumer publishes ``wm`` (every batch up to here is stored) and ``max``
  (highest stored) in ``seminote:cloud:acked:<forwarder>``; the forwarder deletes confirmed
  batches from its spool and resends the ones inside a gap. A gap (``bseq > wm + 1`` stored)
  is counted in ``gaps_detected``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from ..sync.codec import BatchError, aad, open_sealed, unpack_records
from ..sync.forwarder import ACK_KEY, CLOUD_STREAM
from .db import Db

log = logging.getLogger(__name__)

GROUP = "sink"
DEAD_STREAM = "seminote:cloud:dead"


@dataclass(frozen=True, kw_only=True)
class ConsumerConfig:
    redis_url: str
    consumer: str = field(default_factory=lambda: f"sink-{socket.gethostname()}")
    key: bytes | None = None
    claim_idle_s: float = 5.0
    max_deliveries: int = 5
    read_count: int = 32
    block_s: float = 0.5


class CloudConsumer:
    def __init__(self, db: Db, config: ConsumerConfig) -> None:
        self.db = db
        self.config = config
        self._r: aioredis.Redis = aioredis.from_url(
            config.redis_url, socket_timeout=5.0, socket_connect_timeout=1.0
        )
        self._wm: dict[str, int] = {}
        self._above: dict[str, set[int]] = {}
        self.batches_stored = 0
        self.records_new = 0
        self.records_duplicate = 0
        self.dead_lettered = 0
        self.failures = 0
        self.reclaimed = 0
        self.gaps_detected = 0

    @property
    def redis(self) -> aioredis.Redis:
        return self._r

    async def run(self) -> None:
        await asyncio.to_thread(self._load_watermarks)
        backoff = 0.2
        while True:
            try:
                await self.ensure_group()
                for fwd in list(self._wm):
                    await self._publish(fwd)
                while True:
                    await self.step()
                    backoff = 0.2
            except (RedisError, OSError) as e:
                log.warning("cloud stream unreachable (%s); retrying in %.1f s", e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(5.0, backoff * 1.6)

    async def ensure_group(self) -> None:
        try:
            await self._r.xgroup_create(CLOUD_STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def step(self) -> int:
        """One round: reclaim idle entries, read new ones, process them. Returns entries seen."""
        c = self.config
        try:
            _, claimed, *_ = await self._r.xautoclaim(
                CLOUD_STREAM,
                GROUP,
                c.consumer,
                int(c.claim_idle_s * 1000),
                "0-0",
                count=c.read_count,
            )
            entries: list[tuple[Any, dict[bytes, bytes], int]] = []
            for eid, fields in claimed:
                if not fields:  # deleted while pending
                    await self._r.xack(CLOUD_STREAM, GROUP, eid)
                    continue
                info = await self._r.xpending_range(CLOUD_STREAM, GROUP, eid, eid, 1)
                entries.append((eid, fields, int(info[0]["times_delivered"]) if info else 1))
            self.reclaimed += len(entries)
            if not entries:
                got: Any = await self._r.xreadgroup(
                    GROUP,
                    c.consumer,
                    {CLOUD_STREAM: ">"},
                    count=c.read_count,
                    block=int(c.block_s * 1000),
                )
                entries = [(eid, f, 1) for _, es in got for eid, f in es]
        except ResponseError as e:
            if "NOGROUP" in str(e):  # the cloud Redis restarted empty
                await self.ensure_group()
                return 0
            raise
        for eid, fields, delivered in entries:
            await self._handle(eid, fields, delivered)
        return len(entries)

    async def _handle(self, eid: Any, f: dict[bytes, bytes], delivered: int) -> None:
        fwd = f.get(b"fwd", b"?").decode(errors="replace")
        try:
            bseq = int(f[b"bseq"])
            prio = int(f[b"prio"])
            n = int(f[b"n"])
            packed = open_sealed(
                f[b"codec"].decode(),
                f[b"body"],
                f.get(b"nonce", b""),
                key=self.config.key,
                kid=f.get(b"kid", b"").decode(),
                associated=aad(fwd, bseq, prio, n),
            )
            records = unpack_records(packed)
            if len(records) != n:
                raise BatchError(f"batch says {n} records, holds {len(records)}")
            new = await asyncio.to_thread(self.db.store_batch, fwd, bseq, records)
        except (BatchError, KeyError, ValueError, OSError) as e:
            self.failures += 1
            log.warning("batch %s from %s failed (delivery %d): %s", eid, fwd, delivered, e)
            if delivered >= self.config.max_deliveries:
                await self._dead_letter(eid, f, f"{type(e).__name__}: {e}", delivered)
            return
        self.records_new += new
        self.records_duplicate += len(records) - new
        self.batches_stored += 1
        pipe = self._r.pipeline(transaction=True)
        pipe.xack(CLOUD_STREAM, GROUP, eid)
        pipe.xdel(CLOUD_STREAM, eid)
        await pipe.execute()
        await self._advance(fwd, bseq)

    async def _dead_letter(
        self, eid: Any, f: dict[bytes, bytes], error: str, delivered: int
    ) -> None:
        fields: dict[Any, Any] = dict(f)
        fields.update({"orig_id": eid, "error": error, "deliveries": delivered})
        pipe = self._r.pipeline(transaction=True)
        pipe.xadd(DEAD_STREAM, fields)
        pipe.xack(CLOUD_STREAM, GROUP, eid)
        pipe.xdel(CLOUD_STREAM, eid)
        await pipe.execute()
        self.dead_lettered += 1
        log.error("batch %s dead-lettered after %d deliveries: %s", eid, delivered, error)

    def _load_watermarks(self) -> None:
        for fwd in self.db.forwarders():
            self._wm[fwd] = 0
            self._above[fwd] = set(self.db.stored_bseqs(fwd, 0))
            self._settle(fwd)

    def _settle(self, fwd: str) -> None:
        above = self._above[fwd]
        wm = self._wm[fwd]
        while wm + 1 in above:
            wm += 1
            above.discard(wm)
        self._wm[fwd] = wm

    async def _advance(self, fwd: str, bseq: int) -> None:
        wm = self._wm.setdefault(fwd, 0)
        above = self._above.setdefault(fwd, set())
        if bseq <= wm:
            return
        if bseq > wm + 1 and not any(b > wm for b in above):
            self.gaps_detected += bseq - wm - 1
        above.add(bseq)
        self._settle(fwd)
        await self._publish(fwd)

    async def _publish(self, fwd: str) -> None:
        top = max([self._wm[fwd], *self._above.get(fwd, ())])
        await self._r.hset(ACK_KEY.format(fwd), mapping={"wm": self._wm[fwd], "max": top})

    def status(self) -> dict[str, object]:
        return {
            "batches_stored": self.batches_stored,
            "records_new": self.records_new,
            "records_duplicate": self.records_duplicate,
            "dead_lettered": self.dead_lettered,
            "failures": self.failures,
            "reclaimed": self.reclaimed,
            "gaps_detected": self.gaps_detected,
            "watermarks": dict(self._wm),
        }

    async def close(self) -> None:
        await self._r.aclose()
