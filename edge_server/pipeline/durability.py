"""Sessions that outlive their connection: create, resume, commit and finish through the
injected session store.

Write-through: a chunk's result is committed before it is sent, so a client can only hold
results the store holds, and (session, seq) identifies every result. With the store
unreachable the stream goes on (results are sent without a checkpoint, the store write stays
queued); a superseded stream ends with ABORTED.

What a commit writes is encoded by :meth:`Durability.prepare` on the batch worker, right after
the chunk's analysis (JSON result and records, a snapshot every ``snapshot_every_chunks``); the
event loop's :meth:`Durability.commit` only hands those bytes to the store.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ErrorKind, StreamError
from .events import ChunkAnalysis
from .ports import Commit, SessionStore, StoreUnavailable, Superseded
from .records import StoredChunk, decode_result, encode_chunk, summary_record
from .session import Session
from .settings import StreamSettings, check_resumed_format, settings_to_blob

if TYPE_CHECKING:
    from .manager import SessionManager

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Resumed:
    session: Session
    #: stored results the client has not received, oldest first
    replay: tuple[ChunkAnalysis, ...]


class Durability:
    def __init__(
        self, manager: SessionManager, *, store: SessionStore | None, node_id: str
    ) -> None:
        self._manager = manager
        self.store = store
        self.node_id = node_id
        self.store_errors = 0

    @property
    def records_wanted(self) -> bool:
        """The store forwards records (a transport without resume can skip the store when not)."""
        return self.store is not None and self.store.keeps_records

    async def start(self, settings: StreamSettings, *, resumable: bool = True) -> Session:
        """Admit a new session and record it in the store (a store outage does not stop it).
        ``resumable=False`` (WebRTC): only its records are forwarded, if the store keeps any."""
        session = self._manager.open(settings)
        session.resumable = resumable
        if self.store is not None and (resumable or self.store.keeps_records):
            try:
                session.epoch = await self.store.create(
                    settings.session_id, node_id=self.node_id, config=settings_to_blob(settings)
                )
            except StoreUnavailable as e:
                self.store_errors += 1
                log.warning("session %s not recorded in the store: %s", settings.session_id, e)
        return session

    async def resume(self, settings: StreamSettings, *, last_result_seq: int | None) -> Resumed:
        """Take a stored session over (on this node or from another) and restore it."""
        sid = settings.session_id
        if self.store is None:
            raise StreamError(ErrorKind.NOT_FOUND, "config.resume: this node keeps no sessions")
        try:
            stored = await self.store.take_over(sid, node_id=self.node_id)
        except StoreUnavailable as e:
            raise StreamError(ErrorKind.UNAVAILABLE, f"session store unreachable: {e}") from e
        if stored is None:
            raise StreamError(
                ErrorKind.NOT_FOUND,
                f"config.session_id={sid!r}: no stored session to resume (unknown, or expired)",
            )
        check_resumed_format(settings, stored.config)
        if last_result_seq is not None and last_result_seq > stored.last_result_seq:
            allowed = (
                "unset (no result is stored yet)"
                if stored.last_result_seq < 0
                else f"unset or 0..{stored.last_result_seq}"
            )
            raise StreamError(
                ErrorKind.OUT_OF_RANGE,
                f"config.resume.last_result_seq={last_result_seq} is beyond the session's last "
                f"stored result; allowed: {allowed}",
            )
        session = self._manager.open(settings, replace=True)
        try:
            if stored.snapshot is not None:
                session.restore(stored.snapshot)
            session.epoch = stored.epoch
            session.checkpoint_seq = stored.snapshot_seq
            after = -1 if last_result_seq is None else last_result_seq
            session.suppress_upto = after
            blobs = await self.store.results(sid, after_seq=after, upto_seq=stored.snapshot_seq)
            replay = tuple(decode_result(b) for b in blobs)
        except (ValueError, StoreUnavailable) as e:
            self._manager.close(session, reason="resume_failed")
            raise StreamError(
                ErrorKind.UNAVAILABLE, f"session {sid}: stored state unusable ({e})"
            ) from e
        return Resumed(session, replay)

    def prepare(self, session: Session, a: ChunkAnalysis) -> StoredChunk | None:
        """Encode what :meth:`commit` will write for ``a`` (its stored result and records,
        and a snapshot when one is due); ``None`` when nothing will be written. Pure CPU work
        (JSON, the analysis state): the batch worker runs it right after the analysis, so that
        the event loop only hands the bytes to the store."""
        resumable = session.resumable
        if self.store is None or not (resumable or self.store.keeps_records):
            return None
        snap = config = None
        every = self._manager.limits.snapshot_every_chunks
        if resumable and a.seq - session.checkpoint_seq >= every:
            snap = session.snapshot()
            config = settings_to_blob(session.settings)
        result, records = encode_chunk(a)
        return StoredChunk(result, records, snap, config)

    async def commit(
        self, session: Session, a: ChunkAnalysis, *, stored: StoredChunk | None = None
    ) -> int | None:
        """Store one chunk's result (and a snapshot every few chunks) before it is sent;
        returns the checkpoint seq to report, or ``None`` when nothing is confirmed.
        ``stored``: :meth:`prepare`'s output for ``a`` (prepared on the batch worker); without
        it the encoding is done here."""
        if session.superseded:
            raise session.superseded_error()
        if stored is None:
            stored = self.prepare(session, a)
        if self.store is None or stored is None:
            return None
        c = Commit(
            session_id=session.session_id,
            node_id=self.node_id,
            epoch=session.epoch,
            seq=a.seq,
            result=stored.result,
            records=stored.records,
            snapshot=stored.snapshot,
            config=stored.config,
            t_ns=time.time_ns(),
            resumable=session.resumable,
        )
        try:
            await self.store.commit(c)
        except Superseded:
            session.superseded = True
            raise session.superseded_error() from None
        except StoreUnavailable as e:
            self.store_errors += 1
            log.debug("session %s seq %d not confirmed: %s", session.session_id, a.seq, e)
            return None
        if stored.snapshot is not None:
            session.checkpoint_seq = a.seq
        return session.checkpoint_seq if session.checkpoint_seq >= 0 else None

    async def finish(self, session: Session) -> None:
        """Store the session summary (highest priority record) when a stream completes."""
        if self.store is None or session.superseded:
            return
        if not self.store.keeps_records and session.epoch == 0:
            return  # never recorded (not resumable, nothing forwarded)
        seq = session.next_seq - 1
        c = Commit(
            session_id=session.session_id,
            node_id=self.node_id,
            epoch=session.epoch,
            seq=seq,
            result=b"",
            records=(summary_record(session.summary(), seq=seq),),
            final=True,
            t_ns=time.time_ns(),
        )
        try:
            await self.store.commit(c)
        except (Superseded, StoreUnavailable) as e:
            log.info("session %s summary not stored: %s", session.session_id, e)
