"""Cross-session micro-batching: the chunks of every session run as one batched analysis.

A session's handler hands its chunk to :meth:`ChunkBatcher.run` and awaits the outcome. The
batcher collects chunks from all sessions and runs them on one worker thread as a single
:func:`~edge_server.dsp.analyzer.analyze_many` call (one FFT call per frame length, one
network pass per group of sessions...), so the per-call overhead of numpy is paid once per
batch, not once per session.

When a batch is cut (deadline-aware, no fixed timer):

* the worker is busy: chunks wait; the next batch starts the moment it is free;
* ``max_batch`` chunks are waiting: cut;
* otherwise the oldest chunk may wait until it is ``budget_s`` old, but only while another
  chunk is expected within the time left at the measured arrival rate and some session
  without a chunk here could send one (each session has at most one chunk in flight). At
  low load that is never: a lone chunk runs at once and gains no latency.

``max_batch`` bounds a batch's own run time too (every chunk of a batch is answered when the
batch ends): at ~0.3 ms of analysis per chunk, 32 chunks take ~10 ms.

Queue bound and overflow policy: each session has at most one chunk here (its handler awaits
it before reading the next message), so the queue holds at most ``max_sessions`` chunks; a
node past its capacity is protected by admission (:meth:`overloaded`), not by dropping audio.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from ..dsp.analyzer import analyze_many
from .events import ChunkAnalysis, ChunkOutcome
from .ports import BatchMetrics, NullMetrics
from .records import StoredChunk
from .session import PendingChunk, Session

#: encodes an analysed chunk for the session store on the batch worker (Durability.prepare)
Prepare = Callable[[Session, ChunkAnalysis], StoredChunk | None]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class BatcherSettings:
    """Attributes
    ----------
    max_batch : int
        Most chunks per batch; bounds the batch's run time, which every chunk in it waits.
    budget_s : float
        Longest a chunk may wait for others to join its batch, s.
    overload_s : float
        A node whose chunks wait longer than this (smoothed) is overloaded: new sessions are
        refused and the streams are told to slow down or send bigger chunks.
    """

    max_batch: int = 32
    budget_s: float = 0.003
    overload_s: float = 0.015

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"batcher.max_batch must be >= 1, not {self.max_batch}")
        if not 0.0 <= self.budget_s <= 0.1:
            raise ValueError(f"batcher.budget_s must be in [0, 0.1] s, not {self.budget_s}")
        if self.overload_s <= 0.0:
            raise ValueError(f"batcher.overload_s must be > 0 s, not {self.overload_s}")


@dataclass(eq=False)
class _Item:
    session: Session
    chunk: PendingChunk
    future: asyncio.Future[ChunkOutcome]
    t_in: float = field(default_factory=time.monotonic)


@dataclass
class BatchStats:
    """Running figures (smoothed over ~50 batches unless stated)."""

    batches: int = 0
    chunks: int = 0
    #: chunks per batch
    mean_batch: float = 0.0
    #: time from hand-over to outcome of a batch's oldest chunk, s (~20 batches)
    wait_s: float = 0.0
    #: chunk arrivals per s
    arrival_hz: float = 0.0


class ChunkBatcher:
    """Runs sessions' chunks in batches on one worker thread. Event-loop confined API."""

    def __init__(
        self,
        settings: BatcherSettings | None = None,
        *,
        metrics: BatchMetrics | None = None,
        prepare: Prepare | None = None,
    ) -> None:
        self.settings = settings or BatcherSettings()
        self._metrics: BatchMetrics = metrics or NullMetrics()
        #: run on the worker after each chunk's analysis (set by the composition root once the
        #: session store's durability exists); its output rides on the outcome
        self.prepare = prepare
        self._pending: deque[_Item] = deque()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-batch")
        self._timer: asyncio.TimerHandle | None = None
        self._last_arrival = time.monotonic()
        self._arrivals = 0
        self._last_done = self._last_arrival
        #: sessions that handed in a chunk within the last second: each has at most one chunk
        #: here, so only the others can still join a batch
        self._recent: dict[Session, float] = {}
        self._pruned = self._last_arrival
        #: chunks in the batch the worker is running (0: idle)
        self._in_worker = 0
        self.stats = BatchStats()

    def overloaded(self) -> bool:
        """Chunks wait longer than ``overload_s`` (smoothed over ~20 batches), or the oldest
        waiting one has waited three times that. A single slow batch (a burst of new
        sessions, first-use FFT plans) does not refuse sessions."""
        now = time.monotonic()
        # the smoothed wait is only updated by batches: when none ran lately (load dropped,
        # or stopped), its last value halves every 100 ms instead of refusing sessions on
        # the strength of a burst that is over
        idle_s = now - self._last_done
        wait = self.stats.wait_s if idle_s < 0.1 else self.stats.wait_s * 0.5 ** (idle_s / 0.1)
        if wait > self.settings.overload_s:
            return True
        return bool(self._pending) and (now - self._pending[0].t_in > 3 * self.settings.overload_s)

    @property
    def wait_s(self) -> float:
        """Smoothed time from hand-over to outcome, s."""
        return self.stats.wait_s

    async def run(self, session: Session, chunk: PendingChunk) -> ChunkOutcome:
        """Decode, analyse and complete ``chunk`` in the next batch; its outcome."""
        loop = asyncio.get_running_loop()
        item = _Item(session, chunk, loop.create_future())
        now = item.t_in
        # arrival rate from counts over >= 50 ms windows (gaps between single arrivals are
        # bursty: their mean inverse overstates the rate)
        self._arrivals += 1
        dt = now - self._last_arrival
        if dt >= 0.05:
            st = self.stats
            rate = self._arrivals / dt
            st.arrival_hz = 0.7 * st.arrival_hz + 0.3 * rate if st.arrival_hz else rate
            self._arrivals = 0
            self._last_arrival = now
        self._recent[session] = now
        if now - self._pruned > 1.0:
            self._recent = {k: t for k, t in self._recent.items() if now - t <= 1.0}
            self._pruned = now
        self._pending.append(item)
        self._maybe_cut()
        return await item.future

    def _maybe_cut(self) -> None:
        if self._in_worker or not self._pending:
            return
        s = self.settings
        n = len(self._pending)
        if n < s.max_batch:
            slack = s.budget_s - (time.monotonic() - self._pending[0].t_in)
            others = len(self._recent) - n - self._in_worker  # sessions that could still send
            # wait for company only if at least one more chunk is due within the slack
            if slack > 0.0 and others >= 1 and self.stats.arrival_hz * slack >= 1.0:
                if self._timer is None:
                    self._timer = asyncio.get_running_loop().call_later(slack, self._on_timer)
                return
        self._cut()

    def _on_timer(self) -> None:
        self._timer = None
        if not self._in_worker and self._pending:
            self._cut()

    def _cut(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        n = min(len(self._pending), self.settings.max_batch)
        items = [self._pending.popleft() for _ in range(n)]
        self._in_worker = n
        t_cut = time.monotonic()
        loop = asyncio.get_running_loop()
        work = self._pool.submit(_process, items, self.prepare)
        work.add_done_callback(lambda f: loop.call_soon_threadsafe(self._done, items, f, t_cut))

    def _done(self, items: list[_Item], work: Future[list[object]], t_cut: float) -> None:
        self._in_worker = 0
        now = self._last_done = time.monotonic()
        try:
            outcomes = work.result()
        except BaseException as e:  # noqa: BLE001 - a bug in the batch fails its chunks only
            log.exception("analysis batch failed")
            outcomes = [e] * len(items)
        st = self.stats
        st.batches += 1
        st.chunks += len(items)
        a = 0.02 if st.batches > 1 else 1.0
        st.mean_batch += a * (len(items) - st.mean_batch)
        self._metrics.batch_done(chunks=len(items), run_s=now - t_cut)
        # from 0, not from the first batch (a cold start is slow)
        st.wait_s += 0.05 * (max(now - it.t_in for it in items) - st.wait_s)
        for it, out in zip(items, outcomes, strict=True):
            if it.future.done():  # the handler was cancelled
                continue
            if isinstance(out, ChunkOutcome):
                it.future.set_result(out)
            else:
                assert isinstance(out, BaseException)
                it.future.set_exception(out)
        self._maybe_cut()

    def shutdown(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _process(items: list[_Item], prepare: Prepare | None) -> list[object]:
    """Worker thread: decode each chunk, analyse all in one call, build each outcome (with its
    store encoding when ``prepare`` is set). An error (bad audio, a closed session) fails that
    chunk only."""
    outcomes: list[object] = [None] * len(items)
    todo: list[int] = []
    samples = []
    for i, it in enumerate(items):
        try:
            x = it.session.decode(it.chunk)
        except Exception as e:  # noqa: BLE001 - delivered to that chunk's handler
            outcomes[i] = e
            continue
        if isinstance(x, ChunkOutcome):
            outcomes[i] = x
        else:
            todo.append(i)
            samples.append(x)
    blocks = analyze_many([items[i].chunk.analyzer for i in todo], samples)
    for i, block in zip(todo, blocks, strict=True):
        try:
            out = items[i].session.complete(items[i].chunk, block)
            if prepare is not None and out.analysis is not None:
                out = replace(out, stored=prepare(items[i].session, out.analysis))
            outcomes[i] = out
        except Exception as e:  # noqa: BLE001 - delivered to that chunk's handler
            outcomes[i] = e
    return outcomes
