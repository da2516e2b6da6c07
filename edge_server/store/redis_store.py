"""Session store and outbox on Redis (``redis.asyncio``), shared by the nodes of an edge site.

Keys (``{sid}`` is the session id; TTL ``ttl_s``, refreshed by every write):

* ``sn:{sid}:meta`` hash: ``epoch`` (fencing token, bumped by every take-over), ``node``,
  ``config``, ``last_seq`` (highest stored result), ``snap_seq``, ``finished``;
* ``sn:{sid}:res`` sorted set: score seq, member ``"<seq>:<result json>"``; the last
  ``log_keep`` results are kept;
* ``sn:{sid}:snap`` string: the newest analysis snapshot;
* ``seminote:outbox`` stream: one entry per durable record, read by the forwarders' consumer
  group and deleted (XACK + XDEL) once spooled; never trimmed otherwise.

Writes are group-committed: every ``commit`` joins a queue; one writer task sends whatever
is queued (up to 512) as one pipeline of Lua calls, so a thousand sessions cost one round trip
per batch rather than one each. Each Lua call is atomic: it checks the epoch (a superseded
writer gets :class:`Superseded`), stores the result only when its seq is new, appends the
records to the outbox in the same step, and keeps the snapshot if it is newer. The queue is
bounded (``max_pending``); when full, the oldest queued write is dropped and counted
(``dropped_commits``). While Redis is unreachable the writer retries with backoff; callers get
:class:`StoreUnavailable` after ``commit_timeout_s``, and at once while the last batch failed
(so streams do not stall for the timeout on every chunk); their writes stay queued in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError, ResponseError

from router.tasks import cancel_and_wait

from ..pipeline.ports import Commit, StoredSession, StoreUnavailable, Superseded
from ..pipeline.records import CHECKSUM_MOD, record_checksum
from .outbox import OutboxEntry, StreamRecord

log = logging.getLogger(__name__)

OUTBOX_KEY = "seminote:outbox"
OUTBOX_GROUP = "forwarders"
BATCH_MAX = 512

_COMMIT = """
local cur = redis.call('HGET', KEYS[1], 'epoch')
local epoch = tonumber(ARGV[1])
if cur and tonumber(cur) > epoch then return {-1, tonumber(cur)} end
if not cur then
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'node', ARGV[2], 'last_seq', -1, 'snap_seq', -1)
end
local seq = tonumber(ARGV[3])
local last = tonumber(redis.call('HGET', KEYS[1], 'last_seq') or '-1')
local appended = 0
if seq > last or ARGV[9] == '1' then
  if ARGV[4] ~= '' and ARGV[13] == '1' then
    redis.call('ZADD', KEYS[2], seq, ARGV[3] .. ':' .. ARGV[4])
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', seq - tonumber(ARGV[6]))
    redis.call('HSET', KEYS[1], 'last_seq', seq)
  end
  local n = tonumber(ARGV[12])
  for i = 0, n - 1 do
    local b = 14 + i * 4
    redis.call('XADD', KEYS[4], '*', 'sid', ARGV[10], 'seq', ARGV[b + 2], 'kind', ARGV[b],
      'prio', ARGV[b + 1], 'node', ARGV[2], 't', ARGV[11], 'p', ARGV[b + 3])
  end
  appended = n
end
if ARGV[7] ~= '' and ARGV[13] == '1' then
  local ss = tonumber(redis.call('HGET', KEYS[1], 'snap_seq') or '-1')
  if seq > ss then
    redis.call('SET', KEYS[3], ARGV[7])
    redis.call('HSET', KEYS[1], 'snap_seq', seq)
  end
end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'config', ARGV[8]) end
local ttl = tonumber(ARGV[5])
if ARGV[9] == '1' then
  -- finished (or the client vanished: a cancel can look like the end of the requests):
  -- resumable for a short while only
  redis.call('HSET', KEYS[1], 'finished', 1)
  ttl = math.min(ttl, 60000)
end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
return {appended, 0}
"""

_CREATE = """
local e = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'config', ARGV[2], 'last_seq', -1, 'snap_seq', -1)
redis.call('HDEL', KEYS[1], 'finished')
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return e
"""

_TAKE_OVER = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local e = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'node', ARGV[1])
local m = redis.call('HMGET', KEYS[1], 'config', 'snap_seq', 'last_seq')
local snap = redis.call('GET', KEYS[2])
return {e, m[1] or '', m[2] or '-1', m[3] or '-1', snap or ''}
"""


def _keys(sid: str) -> tuple[str, str, str]:
    return (f"sn:{{{sid}}}:meta", f"sn:{{{sid}}}:res", f"sn:{{{sid}}}:snap")


class RedisStore:
    kind = "redis"
    keeps_records = True

    def __init__(
        self,
        url: str,
        *,
        node_id: str,
        ttl_s: float,
        log_keep: int,
        commit_timeout_s: float = 1.0,
        max_pending: int = 50_000,
        claim_idle_s: float = 30.0,
    ) -> None:
        self.url = url
        self.node_id = node_id
        self.ttl_ms = int(ttl_s * 1000)
        self.log_keep = log_keep
        self.commit_timeout_s = commit_timeout_s
        self.max_pending = max_pending
        self.claim_idle_ms = int(claim_idle_s * 1000)
        self._r: aioredis.Redis = aioredis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=1.0
        )
        self._commit = self._r.register_script(_COMMIT)
        self._create = self._r.register_script(_CREATE)
        self._take_over = self._r.register_script(_TAKE_OVER)
        self._pending: deque[tuple[Commit, asyncio.Future[None]]] = deque()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._group_ready = False
        self._next_claim = 0.0
        self._commit_loaded = False
        #: False from a failed write batch until the next successful one
        self.healthy = True
        self.appended_records = 0
        self.checksum = 0
        self.dropped_commits = 0
        self.write_errors = 0
        self.batches = 0

    @property
    def client(self) -> aioredis.Redis:
        return self._r

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except (RedisError, OSError) as e:
            raise StoreUnavailable(f"session store {self.url}: {e}") from e

    async def create(self, session_id: str, *, node_id: str, config: bytes) -> int:
        return int(
            await self._call(
                self._create(keys=_keys(session_id), args=[node_id, config, self.ttl_ms])
            )
        )

    async def take_over(self, session_id: str, *, node_id: str) -> StoredSession | None:
        meta, _, snap = _keys(session_id)
        r = await self._call(self._take_over(keys=[meta, snap], args=[node_id]))
        if not r:
            return None
        epoch, config, snap_seq, last_seq, snapshot = r
        return StoredSession(
            session_id=session_id,
            node_id=node_id,
            epoch=int(epoch),
            config=bytes(config),
            snapshot_seq=int(snap_seq) if snapshot else -1,
            snapshot=bytes(snapshot) if snapshot else None,
            last_result_seq=int(last_seq),
        )

    async def results(self, session_id: str, *, after_seq: int, upto_seq: int) -> list[bytes]:
        if upto_seq <= after_seq:
            return []
        _, res, _ = _keys(session_id)
        members = await self._call(self._r.zrangebyscore(res, f"({after_seq}", upto_seq))
        return [bytes(m).split(b":", 1)[1] for m in members]

    # -- group commit
    async def commit(self, c: Commit) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if len(self._pending) >= self.max_pending:
            _, old = self._pending.popleft()
            self.dropped_commits += 1
            if not old.done():
                old.set_exception(StoreUnavailable("write dropped: store queue full"))
        self._pending.append((c, fut))
        self._wake.set()
        if not self.healthy:
            # the last batch failed: do not hold every chunk for the timeout while Redis is
            # away; the write stays queued in order and lands when Redis is back
            raise StoreUnavailable(f"session store {self.url} unreachable (write queued)")
        try:
            async with asyncio.timeout(self.commit_timeout_s):
                await asyncio.shield(fut)
        except TimeoutError:
            raise StoreUnavailable(
                f"session store {self.url} did not confirm within {self.commit_timeout_s} s "
                "(the write stays queued)"
            ) from None

    def _args(self, c: Commit) -> list[Any]:
        args: list[Any] = [
            c.epoch, c.node_id, c.seq, c.result, self.ttl_ms, self.log_keep,
            c.snapshot or b"", c.config or b"", "1" if c.final else "0", c.session_id, c.t_ns,
            len(c.records), "1" if c.resumable else "0",
        ]  # fmt: skip
        for r in c.records:
            args += [r.kind, r.priority, r.seq, r.payload]
        return args

    async def _write_loop(self) -> None:
        backoff = 0.05
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
            batch = [self._pending[i] for i in range(min(len(self._pending), BATCH_MAX))]
            try:
                if not self._commit_loaded:
                    # load once (and again after a Redis restart) rather than have the pipeline
                    # ask SCRIPT EXISTS on every batch
                    self._commit.sha = await self._r.script_load(_COMMIT)
                    self._commit_loaded = True
                pipe = self._r.pipeline(transaction=False)
                for c, _ in batch:
                    meta, res, snap = _keys(c.session_id)
                    pipe.evalsha(self._commit.sha, 4, meta, res, snap, OUTBOX_KEY, *self._args(c))
                results = await pipe.execute(raise_on_error=False)
                if any(isinstance(r, NoScriptError) for r in results):
                    self._commit_loaded = False  # Redis restarted empty: nothing ran
                    continue
            except (RedisError, OSError) as e:
                self.healthy = False
                self.write_errors += 1
                log.warning("session store write failed (%s); retrying in %.2f s", e, backoff)
                await asyncio.sleep(backoff * (0.8 + 0.4 * random.random()))
                backoff = min(2.0, backoff * 1.6)
                continue
            backoff = 0.05
            self.healthy = True
            self.batches += 1
            for item, res in zip(batch, results, strict=True):
                if self._pending and self._pending[0] is item:
                    self._pending.popleft()
                c, fut = item
                if isinstance(res, Exception):
                    self.write_errors += 1
                    log.error("session store rejected a write for %s: %s", c.session_id, res)
                    if not fut.done():
                        fut.set_exception(StoreUnavailable(str(res)))
                    continue
                appended, newer = int(res[0]), int(res[1])
                if appended < 0:
                    if not fut.done():
                        fut.set_exception(
                            Superseded(f"session {c.session_id} resumed elsewhere (epoch {newer})")
                        )
                    continue
                if appended:
                    self.appended_records += appended
                    for r in c.records:
                        self.checksum += record_checksum(c.session_id, r.seq, r.kind, r.payload)
                    self.checksum %= CHECKSUM_MOD
                if not fut.done():
                    fut.set_result(None)

    # -- Outbox (shared by the nodes of the site; one consumer per forwarder)
    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self._r.xgroup_create(OUTBOX_KEY, OUTBOX_GROUP, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._group_ready = True

    async def read(self, *, max_entries: int, block_s: float) -> list[OutboxEntry]:
        try:
            await self._ensure_group()
            now = time.monotonic()
            if now >= self._next_claim:  # entries a dead forwarder took and never acknowledged
                self._next_claim = now + self.claim_idle_ms / 4000
                _, claimed, *_ = await self._r.xautoclaim(
                    OUTBOX_KEY, OUTBOX_GROUP, self.node_id, self.claim_idle_ms, "0-0",
                    count=max_entries,
                )  # fmt: skip
                if claimed:
                    return [_entry(i, f) for i, f in claimed if f]
            got: Any = await self._r.xreadgroup(
                OUTBOX_GROUP,
                self.node_id,
                {OUTBOX_KEY: ">"},
                count=max_entries,
                block=max(1, int(block_s * 1000)),
            )
        except ResponseError as e:
            if "NOGROUP" in str(e):  # Redis restarted empty: make the group again
                self._group_ready = False
                return []
            raise StoreUnavailable(f"outbox: {e}") from e
        except (RedisError, OSError) as e:
            raise StoreUnavailable(f"outbox: {e}") from e
        return [_entry(i, f) for _, entries in got for i, f in entries]

    async def ack(self, entry_ids: list[str]) -> None:
        if not entry_ids:
            return
        pipe = self._r.pipeline(transaction=True)
        pipe.xack(OUTBOX_KEY, OUTBOX_GROUP, *entry_ids)
        pipe.xdel(OUTBOX_KEY, *entry_ids)
        await self._call(pipe.execute())

    async def depth(self) -> int:
        return int(await self._call(self._r.xlen(OUTBOX_KEY)))

    async def close(self) -> None:
        if self._writer is not None:
            # let queued writes finish for a moment, then stop
            if self._pending:
                last = self._pending[-1][1]
                with contextlib.suppress(TimeoutError, StoreUnavailable, Superseded):
                    async with asyncio.timeout(self.commit_timeout_s):
                        await asyncio.shield(last)
            await cancel_and_wait(self._writer, what="session store writer")
        await self._r.aclose()


def _entry(entry_id: Any, f: dict[bytes, bytes]) -> OutboxEntry:
    return OutboxEntry(
        entry_id=entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id),
        record=StreamRecord(
            session_id=f[b"sid"].decode(),
            seq=int(f[b"seq"]),
            kind=f[b"kind"].decode(),
            priority=int(f[b"prio"]),
            node_id=f[b"node"].decode(),
            t_ns=int(f[b"t"]),
            payload=bytes(f[b"p"]),
        ),
    )
