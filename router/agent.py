"""A node's side of the registry: register, heartbeat with load, re-register after outages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import Callable

from .model import ErrorKind, NodeInfo, NodeLoad, RouterError, validate_node
from .registry import Registry
from .tasks import cancel_and_wait

log = logging.getLogger(__name__)


class NodeAgent:
    """Keeps ``info`` registered while the node runs.

    Heartbeats every ``heartbeat_s`` (TTL ``ttl_s``). NOT_FOUND (the TTL ran out, or the
    registry restarted empty) -> register again at once; UNAVAILABLE -> retry with jittered
    exponential backoff from 0.2 s up to ``max_backoff_s`` (5 s), so a registry that comes back
    sees every live node again within one backoff period.
    """

    def __init__(
        self,
        registry: Registry,
        info: NodeInfo,
        load: Callable[[], NodeLoad],
        *,
        ttl_s: float = 3.0,
        heartbeat_s: float = 1.0,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.registry = registry
        self.info = validate_node(info)
        self._load = load
        self.ttl_s = ttl_s
        self.heartbeat_s = heartbeat_s
        self.max_backoff_s = max_backoff_s
        self.token = secrets.token_hex(16)
        self.registered = False
        self.registrations = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, *, deregister: bool = True) -> None:
        await cancel_and_wait(self._task, what="registration agent")
        if deregister and self.registered:
            with contextlib.suppress(RouterError):
                await self.registry.deregister(self.info.node_id, token=self.token)
        await self.registry.close()

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            try:
                if not self.registered:
                    await self.registry.register(self.info, token=self.token, ttl_s=self.ttl_s)
                    self.registered = True
                    self.registrations += 1
                    log.info("registered %s at %s", self.info.node_id, self.info.address)
                await self.registry.heartbeat(
                    self.info.node_id, token=self.token, load=self._load(), ttl_s=self.ttl_s
                )
                backoff = 0.2
                await asyncio.sleep(self.heartbeat_s)
            except RouterError as e:
                if e.kind is ErrorKind.NOT_FOUND:
                    self.registered = False
                    continue
                if e.kind is ErrorKind.UNAVAILABLE:
                    await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                    backoff = min(self.max_backoff_s, backoff * 2)
                    continue
                # ALREADY_EXISTS / PERMISSION_DENIED: another instance owns this id
                log.error("registry refused %s: %s", self.info.node_id, e.message)
                self.registered = False
                await asyncio.sleep(self.max_backoff_s)
