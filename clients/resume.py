"""A stream that survives lost connections and lost nodes (session resume).

The audio source runs on its own clock (as a microphone would): chunk ``seq`` is captured at
its time whether or not a connection is up. Every chunk stays in a bounded buffer until a result
reports a ``checkpoint_seq`` at or beyond it. When the call fails with a transient status
(UNAVAILABLE, CANCELLED, INTERNAL, UNKNOWN, DEADLINE_EXCEEDED, ABORTED by a shutdown) the
client reconnects, to the next target of its list, with ``config.resume`` = the last result
seq it received; the server answers ``next_audio_seq`` and the client resends from there.
Results are yielded once per seq (a duplicate would be dropped and counted; the server is
built not to send any).

A node that hangs (chunks unanswered and not a word from it for ``result_timeout_s``, 5 s) is
treated as lost: the call is ended and the stream resumes on the next target.

After ``give_up_after_s`` without a new result the last error is raised (a reconnect that fails
again before one is not progress: a node that fails the same chunk on every resume is not
retried forever); a stream that never started gives up after two rounds over the targets (a
wrong address should fail fast).

Backoff follows gRPC's connection-backoff defaults: 1 s initial, x1.6, +-20 % jitter, 120 s
max. The first retry after a working stream goes straight to the next target (another node
is likely up); the backoff applies once every target has failed in a row.

Buffer overflow policy: at most ``max_buffer_s`` of audio is kept; beyond that the oldest
chunk is dropped and counted (``buffer_dropped``); the server then reports a sequence gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import grpc
from seminote.edge.v1 import analysis_pb2 as pb

from .analysis_client import (
    AnalysisClient,
    Audio,
    ChunkResultEvent,
    FlowState,
    StreamEvent,
    StreamOptions,
    StreamStartedEvent,
    StreamSummaryEvent,
    audio_chunks,
    config_request,
    event_from_pb,
)

RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """gRPC connection backoff (doc/connection-backoff.md) defaults."""

    initial_s: float = 1.0
    multiplier: float = 1.6
    jitter: float = 0.2
    max_s: float = 120.0

    def delay_s(self, attempt: int) -> float:
        d = min(self.max_s, self.initial_s * self.multiplier**attempt)
        return d * (1 + self.jitter * (2 * random.random() - 1))


@dataclass
class ResumeStats:
    connects: int = 0
    resumes: int = 0
    duplicates_dropped: int = 0
    buffer_dropped: int = 0
    resent_chunks: int = 0
    #: wall time from losing a stream to the next StreamStarted, s
    outages_s: list[float] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)


class ResilientStream:
    def __init__(
        self,
        targets: list[str],
        audio: Audio,
        options: StreamOptions,
        *,
        backoff: Backoff | None = None,
        max_buffer_s: float = 60.0,
        connect_timeout_s: float = 5.0,
        give_up_after_s: float = 30.0,
        result_timeout_s: float = 5.0,
    ) -> None:
        if not targets:
            raise ValueError("targets: at least one HOST:PORT")
        self.targets = targets
        self.audio = audio
        self.options = options
        self.backoff = backoff or Backoff()
        self.connect_timeout_s = connect_timeout_s
        self.give_up_after_s = give_up_after_s
        if not result_timeout_s > 0:
            raise ValueError(f"result_timeout_s must be > 0 s, not {result_timeout_s}")
        self.result_timeout_s = result_timeout_s
        #: when the node of the current call last spoke (or, if nothing waited, a chunk left)
        self._last_heard = 0.0
        self.stats = ResumeStats()
        self._chunks = audio_chunks(audio, options.chunk_frames)
        dur = [d for _, d in self._chunks]
        mean = sum(dur) / len(dur) if dur else 0.02
        self._max_buffer = max(1, int(max_buffer_s / mean))
        self._buffer: deque[tuple[int, bytes, int]] = deque()
        self._captured = 0
        self._capture_done = asyncio.Event()
        self._new_chunk = asyncio.Event()
        self.session_id = options.session_id
        self.last_result_seq: int | None = None

    async def _capture(self) -> None:
        """Produce chunks on the audio's own clock (or at once when not real time)."""
        t0 = time.monotonic()
        due = t0
        for seq, (payload, duration_s) in enumerate(self._chunks):
            due += duration_s
            if self.options.realtime:
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if len(self._buffer) >= self._max_buffer:
                self._buffer.popleft()
                self.stats.buffer_dropped += 1
            self._buffer.append((seq, payload, time.monotonic_ns()))
            self._captured = seq + 1
            self._new_chunk.set()
        self._capture_done.set()
        self._new_chunk.set()

    async def events(self) -> AsyncIterator[StreamEvent]:
        capture = asyncio.create_task(self._capture())
        clients = {t: AnalysisClient(t) for t in self.targets}
        i = 0
        failures_in_row = 0
        lost_at: float | None = None
        # since when no new result has come (a reconnect alone is not progress: a node that
        # fails the same chunk on every resume must not be retried forever)
        stuck_since: float | None = None
        try:
            while True:
                target = self.targets[i % len(self.targets)]
                try:
                    async for ev in self._one_call(clients[target]):
                        if isinstance(ev, StreamStartedEvent):
                            failures_in_row = 0
                            self.stats.nodes.append(ev.node_id)
                            if lost_at is not None:
                                self.stats.outages_s.append(time.monotonic() - lost_at)
                                lost_at = None
                        elif isinstance(ev, ChunkResultEvent):
                            stuck_since = None
                        yield ev
                        if isinstance(ev, StreamSummaryEvent):
                            return
                    return
                except (grpc.aio.AioRpcError, TimeoutError, _Retry) as e:
                    if (
                        isinstance(e, grpc.aio.AioRpcError)
                        and e.code() not in RETRYABLE
                        and not _shutdown_abort(e)
                    ):
                        raise
                    now = time.monotonic()
                    lost_at = now if lost_at is None else lost_at
                    stuck_since = now if stuck_since is None else stuck_since
                    never_connected = self.stats.connects == 0
                    if now - stuck_since > self.give_up_after_s or (
                        never_connected and failures_in_row + 1 >= 2 * len(self.targets)
                    ):
                        if isinstance(e, _Retry):
                            raise ConnectionError(
                                f"no progress for {now - stuck_since:.1f} s (give_up_after_s): {e}"
                            ) from e
                        raise
                    failures_in_row += 1
                    i += 1
                    if failures_in_row >= len(self.targets):
                        rounds = failures_in_row // len(self.targets) - 1
                        await asyncio.sleep(self.backoff.delay_s(rounds))
        finally:
            capture.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await capture
            for c in clients.values():
                await c.close()

    def _config(self) -> pb.AnalyzeRequest:
        opts = self.options
        if self.session_id and self.session_id != opts.session_id:
            opts = replace(opts, session_id=self.session_id)
        req = config_request(self.audio, opts)
        if self.stats.connects > 0 and self.session_id:
            req.config.resume.SetInParent()
            if self.last_result_seq is not None:
                req.config.resume.last_result_seq = self.last_result_seq
        return req

    async def _one_call(self, client: AnalysisClient) -> AsyncIterator[StreamEvent]:
        call = client.stub.Analyze(wait_for_ready=False)
        try:
            await asyncio.wait_for(call.write(self._config()), self.connect_timeout_s)
            first = await asyncio.wait_for(call.read(), self.connect_timeout_s)
            if first is grpc.aio.EOF:
                await call.wait_for_connection()  # raises the call's status if it failed
                raise _Retry("stream ended before StreamStarted")
            started = event_from_pb(first, time.monotonic_ns())
            if not isinstance(started, StreamStartedEvent):
                raise RuntimeError("server did not answer StreamStarted first")
            if self.stats.connects > 0:
                self.stats.resumes += 1
            self.stats.connects += 1
            self.session_id = started.session_id
            yield started
            # chunks written and answered (the client's flow bookkeeping; no credits here)
            flow = FlowState(next_seq=started.next_audio_seq, answered_upto=started.next_audio_seq)
            self._last_heard = time.monotonic()
            sender = asyncio.create_task(self._send(call, flow))
            silent = asyncio.Event()
            watch = asyncio.create_task(self._watch_node(call, flow, silent))
            try:
                while True:
                    try:
                        msg = await call.read()
                    except (asyncio.CancelledError, grpc.aio.AioRpcError):
                        if silent.is_set():  # cancelled by the watch
                            raise _Retry(
                                f"no answer from the node for {self.result_timeout_s:g} s "
                                "(result_timeout_s)"
                            ) from None
                        raise
                    self._last_heard = time.monotonic()
                    if msg is grpc.aio.EOF:
                        break
                    ev = event_from_pb(msg, time.monotonic_ns())
                    if ev is not None:
                        flow.on_event(ev)
                    if isinstance(ev, ChunkResultEvent):
                        if self.last_result_seq is not None and ev.seq <= self.last_result_seq:
                            self.stats.duplicates_dropped += 1
                            continue
                        self.last_result_seq = ev.seq
                        cp = ev.checkpoint_seq
                        if cp is not None:
                            while self._buffer and self._buffer[0][0] <= cp:
                                self._buffer.popleft()
                    if ev is not None:
                        yield ev
                try:
                    await sender
                except asyncio.InvalidStateError:
                    # the RPC ended (a reset stream can read as EOF) while the sender wrote
                    raise _Retry(f"stream ended while sending ({await call.code()})") from None
            finally:
                watch.cancel()
                if not sender.done():
                    sender.cancel()
                with contextlib.suppress(
                    asyncio.CancelledError, grpc.aio.AioRpcError, asyncio.InvalidStateError
                ):
                    await sender
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
        finally:
            call.cancel()

    async def _watch_node(
        self,
        call: grpc.aio.StreamStreamCall[pb.AnalyzeRequest, pb.AnalyzeResponse],
        flow: FlowState,
        silent: asyncio.Event,
    ) -> None:
        """End the call when chunks wait unanswered and the node has said nothing for
        ``result_timeout_s`` (a hung node: gRPC keepalive does not notice a process whose
        gRPC threads still answer pings, and takes ~40 s for one that is stopped)."""
        period = min(0.25, self.result_timeout_s / 4)
        while True:
            await asyncio.sleep(period)
            waiting = flow.next_seq > flow.answered_upto
            if waiting and time.monotonic() - self._last_heard > self.result_timeout_s:
                silent.set()
                call.cancel()
                return

    async def _send(
        self,
        call: grpc.aio.StreamStreamCall[pb.AnalyzeRequest, pb.AnalyzeResponse],
        flow: FlowState,
    ) -> None:
        nxt = flow.next_seq
        first_new = self._captured
        while True:
            pending = [c for c in self._buffer if c[0] >= nxt]
            for seq, payload, cap_ns in pending:
                chunk = pb.AudioChunk(seq=seq, data=payload, capture_t_ns=cap_ns)
                if flow.next_seq <= flow.answered_upto:
                    # nothing was waiting: the node's silence so far is not its fault
                    self._last_heard = time.monotonic()
                await call.write(pb.AnalyzeRequest(audio=chunk))
                flow.next_seq = seq + 1
                if seq < first_new:
                    self.stats.resent_chunks += 1
                nxt = seq + 1
            if self._capture_done.is_set() and nxt >= self._captured:
                break
            if not pending:
                # no await since `pending` was computed: nothing can have arrived meanwhile
                self._new_chunk.clear()
                await self._new_chunk.wait()
        await call.done_writing()


class _Retry(Exception):
    """The attempt failed in a way worth retrying elsewhere."""


def _shutdown_abort(e: grpc.aio.AioRpcError) -> bool:
    """A node draining for shutdown ends streams; that is a reason to move, not to stop."""
    return e.code() is grpc.StatusCode.ABORTED and "resumed by a newer stream" not in (
        e.details() or ""
    )
