"""Admission, lookup and retention of sessions on this node."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

from ..dsp.analyzer import AnalyzerConfig
from .durability import Durability
from .errors import ErrorKind, StreamError
from .flow import LoadSignal
from .ports import SessionMetrics, SessionStore
from .refined_tier import RefinedPool
from .session import Session, SessionLimits
from .settings import StreamSettings, validate_session_id


@dataclass(frozen=True, kw_only=True)
class ManagerLimits:
    """Attributes
    ----------
    max_sessions : int
        Active sessions admitted; the next gets RESOURCE_EXHAUSTED.
    finished_retention : int
        Finished sessions kept for GetSession (oldest evicted first).
    finished_ttl_s : float
        Finished sessions older than this are evicted.
    snapshot_every_chunks : int
        A snapshot of the analysis state goes to the session store with every this many
        chunks (8 x 23 ms = 0.19 s at 1024-frame chunks of 44.1 kHz): a resume restarts at
        most this far back, and a client keeps at most this much audio (plus what is in flight)
        for a resend.
    """

    max_sessions: int = 1000
    finished_retention: int = 1000
    finished_ttl_s: float = 3600.0
    snapshot_every_chunks: int = 8


class SessionManager:
    """Owns every session of this node. Event-loop confined (no locking)."""

    def __init__(
        self,
        *,
        analyzer_config: AnalyzerConfig,
        session_limits: SessionLimits,
        limits: ManagerLimits,
        metrics: SessionMetrics,
        store: SessionStore | None = None,
        node_id: str = "local",
        refined_pool: RefinedPool | None = None,
        load: LoadSignal | None = None,
    ) -> None:
        self.analyzer_config = analyzer_config
        #: admission by load: while it reports overload, new sessions are refused
        self.load = load
        #: workers for the refined note tier; None: ANALYSIS_REFINED_NOTES is refused
        self.refined_pool = refined_pool
        self.session_limits = session_limits
        self.limits = limits
        self.metrics = metrics
        self._active: dict[str, Session] = {}
        self._finished: OrderedDict[str, Session] = OrderedDict()
        #: the session store side (create, resume, commit, finish); memory store by default
        self.durability = Durability(self, store=store, node_id=node_id)

    @property
    def active_count(self) -> int:
        return len(self._active)

    @staticmethod
    def new_session_id() -> str:
        return uuid.uuid4().hex

    def open(self, settings: StreamSettings, *, replace: bool = False) -> Session:
        """Admit a session locally. ``replace``: a session of that id active here is
        superseded (a resume after a connection this node has not noticed is gone)."""
        old = self._active.get(settings.session_id)
        if replace and old is not None:
            old.superseded = True
            self.close(old, reason="superseded")
        if len(self._active) >= self.limits.max_sessions:
            self.metrics.session_rejected("capacity")
            raise StreamError(
                ErrorKind.RESOURCE_EXHAUSTED,
                f"node at capacity: {len(self._active)} active sessions "
                f"(max_sessions={self.limits.max_sessions}); try another node",
            )
        if self.load is not None and self.load.overloaded():
            self.metrics.session_rejected("overload")
            raise StreamError(
                ErrorKind.RESOURCE_EXHAUSTED,
                f"node overloaded: chunks wait {self.load.wait_s * 1e3:.1f} ms for analysis "
                f"with {len(self._active)} active sessions; try another node",
            )
        if settings.session_id in self._active:
            self.metrics.session_rejected("duplicate_id")
            raise StreamError(
                ErrorKind.ALREADY_EXISTS,
                f"config.session_id={settings.session_id!r} is already streaming on this node",
            )
        session = Session(
            settings=settings,
            analyzer_config=self.analyzer_config,
            limits=self.session_limits,
            refined_pool=self.refined_pool,
        )
        self._finished.pop(settings.session_id, None)
        self._active[settings.session_id] = session
        self.metrics.session_opened(self.active_count)
        return session

    def close(self, session: Session, *, reason: str) -> None:
        if self._active.get(session.session_id) is not session:
            return
        del self._active[session.session_id]
        session.close()
        self._finished[session.session_id] = session
        self._evict()
        self.metrics.session_closed(reason, self.active_count)

    def get(self, session_id: str) -> Session:
        validate_session_id(session_id)
        self._evict()
        session = self._active.get(session_id) or self._finished.get(session_id)
        if session is None:
            raise StreamError(ErrorKind.NOT_FOUND, f"session_id={session_id!r} is not known here")
        return session

    def _evict(self) -> None:
        now = time.monotonic()
        while self._finished:
            oldest = next(iter(self._finished.values()))
            ended = oldest.ended_monotonic or now
            if len(self._finished) > self.limits.finished_retention or (
                now - ended > self.limits.finished_ttl_s
            ):
                self._finished.popitem(last=False)
            else:
                break
