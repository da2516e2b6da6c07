"""Flow-control advice: tell streams to send fewer, bigger chunks before anything is dropped.

Per message, a node pays a fixed transport cost (~50 us of CPU for gRPC in Python) whatever
the chunk's length, so the cheapest relief for an overloaded node is fewer messages carrying
the same audio. When the batch scheduler reports overload, every stream that sends its next
chunk is asked (once, then again every ``calm_s`` while the overload lasts) to double its
chunk length, up to the session's largest chunk. Once the node has been calm for ``calm_s``
the streams are told they may go back to any size. Nothing is dropped: a client that ignores
the advice is slowed by its credits and by HTTP/2 flow control (each session has one chunk
in analysis at a time).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from .session import Session
from .settings import Encoding


class LoadSignal(Protocol):
    def overloaded(self) -> bool: ...

    @property
    def wait_s(self) -> float: ...


@dataclass(frozen=True)
class FlowAdvice:
    """What the transport sends as a flow-control message.

    Attributes
    ----------
    coarsen : bool
        True: send chunks of at least ``suggested_chunk_frames``; False: back to normal.
    suggested_chunk_frames : int
        Frames per chunk at the stream's rate (0: no preference).
    credit_chunks : int
        Chunks the client may have unanswered.
    queue_delay_s : float
        Smoothed wait for analysis on the node, s.
    """

    coarsen: bool
    suggested_chunk_frames: int
    credit_chunks: int
    queue_delay_s: float


class FlowAdvisor:
    """Event-loop confined; one per node."""

    def __init__(self, *, batcher: LoadSignal, credit_chunks: int, calm_s: float = 2.0) -> None:
        if credit_chunks < 1:
            raise ValueError(f"credit_chunks must be >= 1, not {credit_chunks}")
        self._load = batcher
        self.credit_chunks = credit_chunks
        self._calm_s = calm_s
        #: sessions told to coarsen: (when, frames asked for)
        self._told: dict[Session, tuple[float, int]] = {}
        self._calm_since = time.monotonic()

    def update(self, session: Session, chunk_bytes: int) -> FlowAdvice | None:
        """Advice for ``session`` after a chunk of ``chunk_bytes``, or None (nothing new)."""
        now = time.monotonic()
        over = self._load.overloaded()
        if over:
            self._calm_since = now
        told = self._told.get(session)
        if over and (told is None or now - told[0] >= self._calm_s):
            st = session.settings
            if st.encoding is Encoding.OPUS:
                frames = 0  # one packet per chunk: the client can only slow down
            else:
                width = st.channels * st.encoding.sample_bytes
                current = max(chunk_bytes // width, told[1] if told else 0)
                frames = min(2 * current, session.max_chunk_samples)
                if told is not None and frames <= told[1]:
                    return None  # already at the largest chunk
            self._told[session] = (now, frames)
            return FlowAdvice(True, frames, self.credit_chunks, self._load.wait_s)
        if not over and told is not None and now - self._calm_since >= self._calm_s:
            del self._told[session]
            return FlowAdvice(False, 0, self.credit_chunks, self._load.wait_s)
        return None

    def forget(self, session: Session) -> None:
        self._told.pop(session, None)
