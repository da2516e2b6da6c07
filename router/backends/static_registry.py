"""A fixed fleet from a JSON file: nodes are always listed; heartbeats only update load."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from ..model import ErrorKind, NodeInfo, NodeLoad, NodeRecord, RouterError, validate_load


class StaticRegistry:
    """The file holds ``[{node fields...}, ...]`` (see ``NodeInfo``). Registration is refused
    (FAILED_PRECONDITION): the fleet is what the file says."""

    def __init__(self, path: Path) -> None:
        data = json.loads(path.read_text())
        now = time.time()
        self._records = {
            (info := NodeInfo.from_json(d)).node_id: NodeRecord(
                info=info, load=NodeLoad(), updated_at=now
            )
            for d in data
        }

    async def register(self, info: NodeInfo, *, token: str, ttl_s: float) -> None:
        if (
            info.node_id in self._records
            and self._records[info.node_id].info.address == info.address
        ):
            return  # a node of the fixed fleet announcing itself
        raise RouterError(
            ErrorKind.FAILED_PRECONDITION, "static registry: the fleet is fixed by its file"
        )

    async def heartbeat(self, node_id: str, *, token: str, load: NodeLoad, ttl_s: float) -> None:
        rec = self._records.get(node_id)
        if rec is None:
            raise RouterError(
                ErrorKind.NOT_FOUND, f"node_id={node_id!r} is not in the static fleet"
            )
        self._records[node_id] = rec.with_load(validate_load(load), time.time())

    async def deregister(self, node_id: str, *, token: str | None) -> None:
        raise RouterError(
            ErrorKind.FAILED_PRECONDITION, "static registry: the fleet is fixed by its file"
        )

    async def list_nodes(self) -> list[NodeRecord]:
        return list(self._records.values())

    async def wait_for_change(self, timeout_s: float) -> None:
        await asyncio.sleep(timeout_s)

    async def close(self) -> None:
        pass
