"""In-process session store and outbox: the embedded default (no Redis needed).

Sessions can be resumed on this node only (the state dies with the process). Expired sessions
are swept when a new one is created, at most once every ``SWEEP_EVERY_S`` (an O(n) scan), so
what finished sessions hold (their result log and snapshot) is freed within
``FINISHED_TTL_S + SWEEP_EVERY_S`` of their end once another session starts.

The outbox holds records only when a forwarder reads it (``outbox_enabled``); it is bounded
(``outbox_max`` entries); when full, the entry with the lowest priority (features before
events before summaries), oldest first, is dropped and counted in ``outbox_dropped``.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from ..pipeline.ports import Commit, StoredSession, Superseded
from ..pipeline.records import CHECKSUM_MOD, record_checksum
from .outbox import OutboxEntry, StreamRecord


@dataclass
class _Session:
    node_id: str
    epoch: int
    config: bytes
    expires: float
    snapshot_seq: int = -1
    snapshot: bytes | None = None
    last_seq: int = -1
    results: OrderedDict[int, bytes] = field(default_factory=OrderedDict)


#: how long a finished session stays resumable, s
FINISHED_TTL_S = 60.0
#: the least time between two sweeps of expired sessions, s
SWEEP_EVERY_S = 1.0


class MemoryStore:
    kind = "memory"

    def __init__(
        self,
        *,
        ttl_s: float,
        log_keep: int,
        outbox_max: int = 100_000,
        outbox_enabled: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.outbox_enabled = outbox_enabled
        self.keeps_records = outbox_enabled
        self._clock = clock
        self._last_sweep = clock()
        self.ttl_s = ttl_s
        self.log_keep = log_keep
        self.outbox_max = outbox_max
        self._sessions: dict[str, _Session] = {}
        self._outbox: OrderedDict[int, OutboxEntry] = OrderedDict()
        # every operation O(1) in the outbox's size: ids not yet read, oldest first, and the
        # ids of each priority, oldest first (a full outbox evicts the oldest of the least
        # important priority; a scan of 100 000 entries took ~20 ms per append)
        self._unread: OrderedDict[int, None] = OrderedDict()
        self._by_priority: dict[int, OrderedDict[int, None]] = {}
        self._next_id = 0
        self._wake = asyncio.Event()
        self.appended_records = 0
        self.checksum = 0
        self.outbox_dropped = 0

    def _live(self, session_id: str) -> _Session | None:
        s = self._sessions.get(session_id)
        if s is not None and s.expires < self._clock():
            del self._sessions[session_id]
            return None
        return s

    async def create(self, session_id: str, *, node_id: str, config: bytes) -> int:
        now = self._clock()
        if now - self._last_sweep >= SWEEP_EVERY_S:
            self._last_sweep = now
            for sid in [k for k, v in self._sessions.items() if v.expires < now]:
                del self._sessions[sid]
        old = self._live(session_id)
        epoch = (old.epoch + 1) if old else 1
        self._sessions[session_id] = _Session(
            node_id=node_id, epoch=epoch, config=config, expires=now + self.ttl_s
        )
        return epoch

    async def take_over(self, session_id: str, *, node_id: str) -> StoredSession | None:
        s = self._live(session_id)
        if s is None:
            return None
        s.epoch += 1
        s.node_id = node_id
        return StoredSession(
            session_id=session_id,
            node_id=node_id,
            epoch=s.epoch,
            config=s.config,
            snapshot_seq=s.snapshot_seq,
            snapshot=s.snapshot,
            last_result_seq=s.last_seq,
        )

    async def commit(self, c: Commit) -> None:
        s = self._live(c.session_id)
        if s is None:  # expired mid-stream: start over with what the commit carries
            s = self._sessions[c.session_id] = _Session(
                node_id=c.node_id, epoch=c.epoch, config=c.config or b"", expires=0.0
            )
        if s.epoch > c.epoch:
            raise Superseded(f"session {c.session_id} was resumed elsewhere (epoch {s.epoch})")
        s.expires = self._clock() + self.ttl_s
        if c.config is not None:
            s.config = c.config
        if c.seq > s.last_seq or c.final:
            if c.result and c.resumable:
                s.results[c.seq] = c.result
                while len(s.results) > self.log_keep:
                    s.results.popitem(last=False)
                s.last_seq = c.seq
            for r in c.records:
                self._append(
                    StreamRecord(
                        c.session_id, r.seq, r.kind, r.priority, c.node_id, c.t_ns, r.payload
                    )
                )
        if c.snapshot is not None and c.resumable and c.seq > s.snapshot_seq:
            s.snapshot, s.snapshot_seq = c.snapshot, c.seq
        if c.final:
            # the stream ended (or its client vanished: a cancel can look like the end of the
            # requests); keep it resumable for a short while only
            s.expires = self._clock() + min(self.ttl_s, FINISHED_TTL_S)

    def _append(self, e: StreamRecord) -> None:
        if not self.outbox_enabled:
            return
        if len(self._outbox) >= self.outbox_max:
            worst = max(p for p, ids in self._by_priority.items() if ids)
            victim, _ = self._by_priority[worst].popitem(last=False)
            del self._outbox[victim]
            self._unread.pop(victim, None)
            self.outbox_dropped += 1
        i = self._next_id
        self._next_id += 1
        self._outbox[i] = OutboxEntry(str(i), e)
        self._unread[i] = None
        self._by_priority.setdefault(e.priority, OrderedDict())[i] = None
        self.appended_records += 1
        self.checksum = (
            self.checksum + record_checksum(e.session_id, e.seq, e.kind, e.payload)
        ) % CHECKSUM_MOD
        self._wake.set()

    async def results(self, session_id: str, *, after_seq: int, upto_seq: int) -> list[bytes]:
        s = self._live(session_id)
        if s is None:
            return []
        return [b for q, b in s.results.items() if after_seq < q <= upto_seq]

    # -- Outbox
    async def read(self, *, max_entries: int, block_s: float) -> list[OutboxEntry]:
        if not self._unread:
            self._wake.clear()
            try:
                async with asyncio.timeout(block_s):  # not wait_for: see Forwarder._sender
                    await self._wake.wait()
            except TimeoutError:
                return []
        out: list[OutboxEntry] = []
        while self._unread and len(out) < max_entries:
            i, _ = self._unread.popitem(last=False)
            out.append(self._outbox[i])
        return out

    async def ack(self, entry_ids: list[str]) -> None:
        for i in entry_ids:
            e = self._outbox.pop(int(i), None)
            if e is not None:
                self._by_priority[e.record.priority].pop(int(i), None)
                self._unread.pop(int(i), None)

    @property
    def stored_sessions(self) -> int:
        """Sessions held (live, finished but resumable, or expired and not yet swept)."""
        return len(self._sessions)

    async def depth(self) -> int:
        return len(self._outbox)

    async def close(self) -> None:
        pass
