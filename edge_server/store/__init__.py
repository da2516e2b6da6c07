"""Session stores (memory, Redis) and the edge outbox they feed; chosen by URL in
:func:`open_store`."""

from __future__ import annotations

from .memory import MemoryStore
from .outbox import Outbox, OutboxEntry
from .redis_store import RedisStore


def open_store(
    url: str,
    *,
    node_id: str,
    ttl_s: float,
    log_keep: int,
    commit_timeout_s: float = 1.0,
    forwarded: bool = False,
) -> MemoryStore | RedisStore:
    """``memory://`` (the embedded default) or ``redis://HOST:PORT/DB``. ``forwarded``: a
    forwarder reads the outbox (the memory store keeps no outbox otherwise)."""
    if url in ("", "memory://"):
        return MemoryStore(ttl_s=ttl_s, log_keep=log_keep, outbox_enabled=forwarded)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(
            url, node_id=node_id, ttl_s=ttl_s, log_keep=log_keep, commit_timeout_s=commit_timeout_s
        )
    raise ValueError(f"--store {url!r}: use memory:// or redis://HOST:PORT/DB")


__all__ = ["MemoryStore", "Outbox", "OutboxEntry", "RedisStore", "open_store"]
