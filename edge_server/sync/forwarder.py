"""Ships the edge outbox to the cloud stream: batches, priority, compression, optional AES-GCM,
a bandwidth cap, retries with backoff and jitter, and the on-disk spool.

Two tasks:

* intake: reads the outbox (up to ``batch_records`` at a time), groups the entries by priority,
  writes each group to the spool (fsync'd), then acknowledges the entries (the outbox deletes
  them). A crash between the two re-reads them later: the cloud stores records idempotently.
* sender: sends queued batches most important first (summaries, then onsets/notes, then
  features), each with the next batch seq of this forwarder, and keeps it in the spool until the
  cloud's watermark (``seminote:cloud:acked:<forwarder>``: ``wm`` = every batch up to here is
  stored, ``max`` = highest stored) passes it. A batch inside a gap (``wm < bseq < max``, so a
  later one arrived and it did not) is resent after ``resend_after_s``; any unconfirmed batch
  after ``stale_resend_s``. At most ``max_inflight`` batches await confirmation.

Sends that fail back off exponentially (``backoff_initial_s`` x 1.6 up to ``backoff_max_s``,
+-20 % jitter). Bandwidth: a token bucket of ``bandwidth_bytes_per_s`` (0 = unlimited) over the
bytes put on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from router.tasks import cancel_and_wait

from ..pipeline.ports import StoreUnavailable
from ..store.outbox import Outbox, OutboxEntry, StreamRecord
from .codec import aad, key_id, pack_records, seal
from .spool import Spool, SpoolItem

log = logging.getLogger(__name__)

CLOUD_STREAM = "seminote:cloud:batches"
ACK_KEY = "seminote:cloud:acked:{}"


@dataclass(frozen=True, kw_only=True)
class ForwarderConfig:
    cloud_url: str
    forwarder_id: str
    spool_dir: Path
    spool_max_bytes: int = 256 << 20
    key: bytes | None = None
    batch_records: int = 512
    #: how long the intake waits for a batch to fill before spooling what it has
    linger_s: float = 0.25
    bandwidth_bytes_per_s: int = 0
    max_inflight: int = 256
    resend_after_s: float = 2.0
    stale_resend_s: float = 60.0
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 10.0
    poll_s: float = 0.25


class Forwarder:
    def __init__(self, outbox: Outbox, config: ForwarderConfig) -> None:
        self.outbox = outbox
        self.config = config
        self.spool = Spool(config.spool_dir, max_bytes=config.spool_max_bytes)
        self._cloud: aioredis.Redis = aioredis.from_url(
            config.cloud_url, socket_timeout=2.0, socket_connect_timeout=1.0
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._sent_at: dict[int, float] = {}
        self._kick = asyncio.Event()
        self._tokens = float(config.bandwidth_bytes_per_s)
        self._tokens_t = time.monotonic()
        self.cloud_up = False
        self.watermark = 0
        self.batches_sent = 0
        self.batches_resent = 0
        self.bytes_sent = 0
        self.records_spooled = 0
        self.send_errors = 0
        self.internal_errors = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._guard(self._intake)),
            loop.create_task(self._guard(self._sender)),
        ]

    async def _guard(self, loop_fn: Callable[[], Awaitable[None]]) -> None:
        """Keep a forwarder loop alive through an unexpected error (logged, counted)."""
        while True:
            try:
                await loop_fn()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.internal_errors += 1
                log.exception("forwarder loop failed; restarting it in 1 s")
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks, what="forwarder loop")
        await self._cloud.aclose()

    def status(self) -> dict[str, object]:
        return {
            "cloud_up": self.cloud_up,
            "watermark": self.watermark,
            "batches_sent": self.batches_sent,
            "batches_resent": self.batches_resent,
            "bytes_sent": self.bytes_sent,
            "records_spooled": self.records_spooled,
            "spool_bytes": self.spool.bytes_used,
            "spool_records": self.spool.records_held(),
            "spool_dropped_records": dict(self.spool.dropped_records),
            "send_errors": self.send_errors,
            "internal_errors": self.internal_errors,
        }

    # -- intake: outbox -> spool
    async def _intake(self) -> None:
        c = self.config
        backoff = c.backoff_initial_s
        while True:
            try:
                entries = await self._gather()
                backoff = c.backoff_initial_s
            except StoreUnavailable as err:
                log.warning("outbox unreadable (%s); retrying in %.1f s", err, backoff)
                await asyncio.sleep(_jitter(backoff))
                backoff = min(c.backoff_max_s, backoff * 1.6)
                continue
            if not entries:
                continue
            groups: dict[int, list[StreamRecord]] = defaultdict(list)
            for e in entries:
                groups[e.record.priority].append(e.record)
            for prio, group in sorted(groups.items()):
                packed = pack_records(group)
                await asyncio.to_thread(self.spool.put, packed, priority=prio, count=len(group))
                self.records_spooled += len(group)
            while True:
                try:
                    await self.outbox.ack([e.entry_id for e in entries])
                    break
                except StoreUnavailable as err:
                    log.warning("outbox ack failed (%s); retrying", err)
                    await asyncio.sleep(_jitter(backoff))
                    backoff = min(c.backoff_max_s, backoff * 1.6)
            self._kick.set()

    async def _gather(self) -> list[OutboxEntry]:
        """Read until ``batch_records`` entries or ``linger_s`` after the first one: fewer,
        bigger batches (one spool file and fsync each)."""
        c = self.config
        entries = await self.outbox.read(max_entries=c.batch_records, block_s=c.poll_s)
        if not entries:
            return entries
        until = time.monotonic() + c.linger_s
        while len(entries) < c.batch_records:
            left = until - time.monotonic()
            if left <= 0:
                break
            more = await self.outbox.read(max_entries=c.batch_records - len(entries), block_s=left)
            entries += more
        return entries

    # -- sender: spool -> cloud
    async def _sender(self) -> None:
        c = self.config
        backoff = c.backoff_initial_s
        while True:
            try:
                await self._cycle()
                self.cloud_up = True
                backoff = c.backoff_initial_s
            except (RedisError, OSError) as e:
                self.cloud_up = False
                self.send_errors += 1
                log.warning("cloud unreachable (%s); retrying in %.1f s", e, backoff)
                await asyncio.sleep(_jitter(backoff))
                backoff = min(c.backoff_max_s, backoff * 1.6)
                continue
            self._kick.clear()
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that races the
            # event being set, and this loop would then outlive stop()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(c.poll_s):
                    await self._kick.wait()

    async def _cycle(self) -> None:
        c = self.config
        acked = await self._cloud.hmget(ACK_KEY.format(c.forwarder_id), "wm", "max")
        wm = int(acked[0] or 0)
        top = int(acked[1] or 0)
        self.watermark = wm
        if any(i.bseq <= wm for i in self.spool.sent()):
            await asyncio.to_thread(self.spool.confirm, wm)
        now = time.monotonic()
        sent = self.spool.sent()
        for item in sent:
            since = now - self._sent_at.get(item.bseq, 0.0)
            gap = item.bseq < top and since >= c.resend_after_s
            if gap or since >= c.stale_resend_s:
                await self._send(item)
                self.batches_resent += 1
        inflight = len(sent)
        for item in self.spool.queued():
            if inflight >= c.max_inflight:
                break
            marked = await asyncio.to_thread(self.spool.mark_sent, item)
            if marked is None:
                continue
            await self._send(marked)
            inflight += 1

    async def _send(self, item: SpoolItem) -> None:
        c = self.config
        packed = await asyncio.to_thread(self.spool.read, item)
        codec, body, nonce = seal(
            packed, key=c.key, associated=aad(c.forwarder_id, item.bseq, item.priority, item.count)
        )
        await self._throttle(len(body))
        await self._cloud.xadd(
            CLOUD_STREAM,
            {
                "fwd": c.forwarder_id,
                "bseq": item.bseq,
                "prio": item.priority,
                "n": item.count,
                "codec": codec,
                "kid": key_id(c.key) if c.key else "",
                "nonce": nonce,
                "body": body,
            },
        )
        self._sent_at[item.bseq] = time.monotonic()
        self.batches_sent += 1
        self.bytes_sent += len(body)
        if len(self._sent_at) > 4 * c.max_inflight:
            live = {i.bseq for i in self.spool.sent()}
            self._sent_at = {k: v for k, v in self._sent_at.items() if k in live}

    async def _throttle(self, nbytes: int) -> None:
        rate = self.config.bandwidth_bytes_per_s
        if rate <= 0:
            return
        now = time.monotonic()
        self._tokens = min(float(rate), self._tokens + (now - self._tokens_t) * rate)
        self._tokens_t = now
        self._tokens -= nbytes
        if self._tokens < 0:
            await asyncio.sleep(-self._tokens / rate)


def _jitter(s: float) -> float:
    return s * (0.8 + 0.4 * random.random())
