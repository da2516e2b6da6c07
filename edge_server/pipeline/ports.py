"""Small protocols through which the pipeline reaches injected infrastructure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .records import OutRecord


class SessionMetrics(Protocol):
    def session_opened(self, active: int) -> None: ...
    def session_closed(self, reason: str, active: int) -> None: ...
    def session_rejected(self, reason: str) -> None: ...
    def chunk_processed(
        self,
        *,
        decode_s: float,
        analyze_s: float,
        total_s: float,
        onsets: int,
        retracted_onsets: int = 0,
    ) -> None: ...
    def chunk_rejected(self, reason: str) -> None: ...


class BatchMetrics(Protocol):
    def batch_done(self, *, chunks: int, run_s: float) -> None: ...


class NullMetrics:
    """Metrics sink that records nothing (in-process evaluation, tests)."""

    def batch_done(self, *, chunks: int, run_s: float) -> None:
        pass

    def session_opened(self, active: int) -> None:
        pass

    def session_closed(self, reason: str, active: int) -> None:
        pass

    def session_rejected(self, reason: str) -> None:
        pass

    def chunk_processed(
        self,
        *,
        decode_s: float,
        analyze_s: float,
        total_s: float,
        onsets: int,
        retracted_onsets: int = 0,
    ) -> None:
        pass

    def chunk_rejected(self, reason: str) -> None:
        pass


class SessionStore(Protocol):
    """Where sessions outlive their connection (see ``edge_server/store``).

    Every method may raise :class:`StoreUnavailable`; ``commit`` and ``finish`` may raise
    :class:`Superseded`.
    """

    #: short name for logs and the status page ("memory", "redis")
    kind: str
    #: records go somewhere (an outbox a forwarder reads); False: only resume state is kept
    keeps_records: bool

    async def create(self, session_id: str, *, node_id: str, config: bytes) -> int:
        """Record a new session; returns its epoch (fencing token)."""
        ...

    async def take_over(self, session_id: str, *, node_id: str) -> StoredSession | None:
        """Claim a stored session for this node (bumps the epoch); ``None`` when unknown."""
        ...

    async def commit(self, commit: Commit) -> None:
        """Store one chunk's result, its records and maybe a snapshot, atomically, in order."""
        ...

    async def results(self, session_id: str, *, after_seq: int, upto_seq: int) -> list[bytes]:
        """Stored result blobs with ``after_seq < seq <= upto_seq``, in seq order."""
        ...

    async def close(self) -> None: ...


class Superseded(Exception):
    """The session was taken over (resumed) by a newer stream; this one must stop."""


class StoreUnavailable(Exception):
    """The store did not answer in time; the write stays queued and is retried."""


@dataclass(frozen=True, slots=True)
class StoredSession:
    session_id: str
    node_id: str
    epoch: int
    config: bytes
    #: seq of the chunk the snapshot ends with; -1 when there is none (start from scratch)
    snapshot_seq: int
    snapshot: bytes | None
    #: highest result seq stored; -1 when none
    last_result_seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Commit:
    session_id: str
    node_id: str
    epoch: int
    seq: int
    #: encoded result (records.encode_result); empty for the final commit
    result: bytes
    records: tuple[OutRecord, ...]
    snapshot: bytes | None = None
    config: bytes | None = None
    final: bool = False
    t_ns: int = 0
    #: keep the result and snapshot for a resume (False: only forward the records, e.g.
    #: WebRTC, which has no resume)
    resumable: bool = True
