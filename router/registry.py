"""The registry interface, a cache that outlives backend outages, and backend selection."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from .model import NodeInfo, NodeLoad, NodeRecord
from .tasks import cancel_and_wait

log = logging.getLogger(__name__)


class Registry(Protocol):
    """Where nodes announce themselves. Every backend has the same semantics:

    * ``register`` stores a node for ``ttl_s``; the same ``node_id`` from another address is
      refused (ALREADY_EXISTS), from the same address it replaces the old registration (a
      restarted node) and its new ``token``;
    * ``heartbeat`` extends the TTL and records the load; NOT_FOUND once the TTL ran out (the
      node registers again), PERMISSION_DENIED with another node's token;
    * ``deregister`` with the node's token, or ``token=None`` for an operator;
    * ``list_nodes`` gives the live nodes; ``wait_for_change`` returns when the list may have
      changed (a notification or a blocking query), or after ``timeout_s``.
    Backend failures raise :class:`RouterError` with kind UNAVAILABLE.
    """

    async def register(self, info: NodeInfo, *, token: str, ttl_s: float) -> None: ...
    async def heartbeat(
        self, node_id: str, *, token: str, load: NodeLoad, ttl_s: float
    ) -> None: ...
    async def deregister(self, node_id: str, *, token: str | None) -> None: ...
    async def list_nodes(self) -> list[NodeRecord]: ...
    async def wait_for_change(self, timeout_s: float) -> None: ...
    async def close(self) -> None: ...


class RegistryCache:
    """The router's view of the fleet: refreshed on every change notification (and at least
    every ``poll_s``); when the backend is unreachable the last known list stays in use and
    :attr:`stale` is True until a refresh succeeds."""

    def __init__(self, registry: Registry, *, poll_s: float = 0.5) -> None:
        self.registry = registry
        self.poll_s = poll_s
        self.nodes: list[NodeRecord] = []
        self.stale = True
        self.last_refresh = 0.0
        self.failures = 0
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task, what="registry refresh")

    async def refresh(self) -> None:
        try:
            self.nodes = await self.registry.list_nodes()
        except Exception as e:  # noqa: BLE001 - any backend failure keeps the cached list
            self.failures += 1
            if not self.stale:
                log.warning(
                    "registry unreachable, routing from %d cached nodes: %s", len(self.nodes), e
                )
            self.stale = True
            return
        self.stale = False
        self.last_refresh = time.monotonic()
        self._changed.set()
        self._changed.clear()

    async def _run(self) -> None:
        while True:
            if self.stale:
                await asyncio.sleep(self.poll_s)
            else:
                try:
                    await self.registry.wait_for_change(self.poll_s)
                except Exception:  # noqa: BLE001 - reported by refresh() below
                    await asyncio.sleep(self.poll_s)
            await self.refresh()


def open_registry(url: str) -> Registry:
    """``redis://HOST:PORT/DB``, ``consul://HOST:PORT`` or ``static:PATH`` (JSON list of nodes)."""
    parsed = urlparse(url)
    if parsed.scheme in ("redis", "rediss"):
        from .backends.redis_registry import RedisRegistry

        return RedisRegistry(url)
    if parsed.scheme in ("consul", "consul+https"):
        from .backends.consul_registry import ConsulRegistry

        return ConsulRegistry(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 8500,
            scheme="https" if parsed.scheme.endswith("https") else "http",
        )
    if parsed.scheme == "static":
        from .backends.static_registry import StaticRegistry

        return StaticRegistry(Path(url.split(":", 1)[1]))
    raise ValueError(f"registry url {url!r}: use redis://, consul:// or static:PATH")
