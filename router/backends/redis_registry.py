"""Registry on Redis: one hash per node with a TTL, an index set, and pub/sub notifications."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..model import ErrorKind, NodeInfo, NodeLoad, NodeRecord, RouterError

_REGISTER = """
local addr = redis.call('HGET', KEYS[1], 'address')
if addr and addr ~= ARGV[2] then return addr end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'info', ARGV[1], 'address', ARGV[2], 'token', ARGV[3],
           'load', ARGV[4], 'updated_at', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('SADD', KEYS[2], ARGV[7])
redis.call('PUBLISH', ARGV[8], 'register ' .. ARGV[7])
return ''
"""
_HEARTBEAT = """
local tok = redis.call('HGET', KEYS[1], 'token')
if not tok then return 'NOT_FOUND' end
if tok ~= ARGV[1] then return 'PERMISSION_DENIED' end
redis.call('HSET', KEYS[1], 'load', ARGV[2], 'updated_at', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 'OK'
"""
_DEREGISTER = """
local tok = redis.call('HGET', KEYS[1], 'token')
if not tok then return 'NOT_FOUND' end
if ARGV[1] ~= '' and tok ~= ARGV[1] then return 'PERMISSION_DENIED' end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], 'deregister ' .. ARGV[2])
return 'OK'
"""


def _unavailable(e: Exception) -> RouterError:
    return RouterError(ErrorKind.UNAVAILABLE, f"registry (redis) unreachable: {e}")


def _raise_for(result: str, node_id: str) -> None:
    """Map a heartbeat/deregister script result to the registry's errors."""
    if result == "NOT_FOUND":
        raise RouterError(ErrorKind.NOT_FOUND, f"node_id={node_id!r} is not registered")
    if result == "PERMISSION_DENIED":
        raise RouterError(
            ErrorKind.PERMISSION_DENIED, f"node_id={node_id!r} belongs to another instance"
        )


class RedisRegistry:
    """Keys: ``{prefix}:node:{id}`` (hash: info, address, token, load, updated_at; PEXPIRE =
    TTL), ``{prefix}:nodes`` (set of ids), channel ``{prefix}:events``. Expired ids are removed
    from the set by the next ``list_nodes``."""

    def __init__(self, url: str, *, prefix: str = "seminote:registry") -> None:
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, decode_responses=True
        )
        self._prefix = prefix
        self._index = f"{prefix}:nodes"
        self._channel = f"{prefix}:events"
        self._register = self._redis.register_script(_REGISTER)
        self._heartbeat = self._redis.register_script(_HEARTBEAT)
        self._deregister = self._redis.register_script(_DEREGISTER)
        self._pubsub: Any = None

    def _key(self, node_id: str) -> str:
        return f"{self._prefix}:node:{node_id}"

    async def register(self, info: NodeInfo, *, token: str, ttl_s: float) -> None:
        args: list[str | int] = [
            json.dumps(info.to_json()),
            info.address,
            token,
            json.dumps(asdict(NodeLoad())),
            repr(time.time()),
            int(ttl_s * 1000),
            info.node_id,
            self._channel,
        ]
        try:
            other = await self._register(keys=[self._key(info.node_id), self._index], args=args)
        except RedisError as e:
            raise _unavailable(e) from e
        if other:
            raise RouterError(
                ErrorKind.ALREADY_EXISTS,
                f"node.node_id={info.node_id!r} is registered from {other}; "
                f"{info.address} cannot take it over",
            )

    async def heartbeat(self, node_id: str, *, token: str, load: NodeLoad, ttl_s: float) -> None:
        try:
            r = await self._heartbeat(
                keys=[self._key(node_id)],
                args=[token, json.dumps(asdict(load)), repr(time.time()), int(ttl_s * 1000)],
            )
        except RedisError as e:
            raise _unavailable(e) from e
        _raise_for(r, node_id)

    async def deregister(self, node_id: str, *, token: str | None) -> None:
        try:
            r = await self._deregister(
                keys=[self._key(node_id), self._index], args=[token or "", node_id, self._channel]
            )
        except RedisError as e:
            raise _unavailable(e) from e
        _raise_for(r, node_id)

    async def list_nodes(self) -> list[NodeRecord]:
        try:
            ids = sorted(str(i) for i in await self._redis.smembers(self._index))
            async with self._redis.pipeline(transaction=False) as pipe:
                for node_id in ids:
                    pipe.hmget(self._key(node_id), "info", "load", "updated_at")
                rows = await pipe.execute()
            gone = [i for i, row in zip(ids, rows, strict=True) if row[0] is None]
            if gone:
                await self._redis.srem(self._index, *gone)
        except RedisError as e:
            raise _unavailable(e) from e
        out = []
        for row in rows:
            if row[0] is None:
                continue
            info = NodeInfo.from_json(json.loads(row[0]))
            load = NodeLoad(**json.loads(row[1])) if row[1] else NodeLoad()
            out.append(NodeRecord(info=info, load=load, updated_at=float(row[2] or 0.0)))
        return out

    async def wait_for_change(self, timeout_s: float) -> None:
        try:
            if self._pubsub is None:
                self._pubsub = self._redis.pubsub()
                await self._pubsub.subscribe(self._channel)
            deadline = time.monotonic() + timeout_s
            while (left := deadline - time.monotonic()) > 0:
                msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
                if msg is not None:
                    return
        except (RedisError, OSError) as e:
            self._pubsub = None
            raise _unavailable(e) from e
        except asyncio.CancelledError:
            raise

    async def close(self) -> None:
        if self._pubsub is not None:
            try:
                await self._pubsub.aclose()
            except (RedisError, OSError):
                pass
        await self._redis.aclose()
