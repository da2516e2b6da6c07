"""The edge outbox: records waiting for the forwarder to ship them to the cloud."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One durable record on its way to the cloud: outbox entry, batch row and DB row alike."""

    session_id: str
    seq: int
    kind: str
    priority: int
    node_id: str
    t_ns: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A record as the forwarder reads it; ``entry_id`` is the outbox's own id (for ack)."""

    entry_id: str
    record: StreamRecord


class Outbox(Protocol):
    async def read(self, *, max_entries: int, block_s: float) -> list[OutboxEntry]:
        """Entries not yet handed to this reader (and, for a shared outbox, entries another
        reader took but did not acknowledge for a while)."""
        ...

    async def ack(self, entry_ids: list[str]) -> None:
        """The entries are safe elsewhere (the forwarder's spool): remove them."""
        ...

    async def depth(self) -> int:
        """Entries stored and not acknowledged."""
        ...
