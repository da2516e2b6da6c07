"""The AudioAnalysis gRPC service: stream messages <-> session calls."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from seminote.edge.v1 import analysis_pb2 as pb
from seminote.edge.v1 import analysis_pb2_grpc as pb_grpc

from router.tasks import cancel_and_wait

from ..pipeline.batcher import ChunkBatcher
from ..pipeline.errors import ErrorKind, StreamError
from ..pipeline.events import ChunkOutcome
from ..pipeline.flow import FlowAdvisor
from ..pipeline.manager import SessionManager
from ..pipeline.offload import CpuOffloader
from ..pipeline.session import Session
from .convert import (
    analyses_to_pb,
    flow_to_pb,
    note_to_pb,
    onset_to_pb,
    result_to_pb,
    settings_from_pb,
    summary_to_pb,
    warning_to_pb,
)

log = logging.getLogger(__name__)

STATUS = {
    ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.OUT_OF_RANGE: grpc.StatusCode.OUT_OF_RANGE,
    ErrorKind.ABORTED: grpc.StatusCode.ABORTED,
}

Context = grpc.aio.ServicerContext[Any, Any]


class AudioAnalysisService(pb_grpc.AudioAnalysisServicer):
    """Per stream, one chunk is in flight: read, analyse, write, then read the next. The only
    buffering is gRPC's HTTP/2 flow-control window, so a fast sender is slowed by TCP.

    A client that stops reading: once a write has waited ``write_stall_timeout_s`` the session
    is closed and its resources released, with status RESOURCE_EXHAUSTED. HTTP/2 cannot send
    the status ahead of the results already queued for that client, so the client learns it
    only if it reads again (gRPC then reports the reset stream as CANCELLED or INTERNAL).
    One watchdog task per node checks the writes in progress: ``asyncio.wait_for`` on every
    write would add a task and a loop iteration to each chunk's latency.

    A client that stops sending: when no message has come for ``read_idle_timeout_s`` while
    the handler waits for one (a stalled or abandoned client, or one that opened a stream and
    never sent its config), the stream ends with DEADLINE_EXCEEDED and its session is closed,
    so that it does not hold a ``max_sessions`` slot and its analysis state forever; its stored
    state can be resumed. The same watchdog checks the reads in progress (an
    ``asyncio.timeout`` around each read cost ~8 us per message, the bookkeeping here < 1 us).
    """

    def __init__(
        self,
        *,
        manager: SessionManager,
        offloader: CpuOffloader,
        batcher: ChunkBatcher,
        node_id: str,
        write_stall_timeout_s: float = 5.0,
        read_idle_timeout_s: float = 60.0,
        credit_chunks: int = 4,
    ) -> None:
        if not read_idle_timeout_s > 0:
            raise ValueError(f"read_idle_timeout_s must be > 0 s, not {read_idle_timeout_s}")
        self._idle_s = read_idle_timeout_s
        self._manager = manager
        self._offloader = offloader
        self._batcher = batcher
        self._flow = FlowAdvisor(batcher=batcher, credit_chunks=credit_chunks)
        self._node_id = node_id
        self._stall_s = write_stall_timeout_s
        self._writing: dict[asyncio.Task[Any], float] = {}
        self._stalled: set[asyncio.Task[Any]] = set()
        #: handlers waiting for the client's next message, since when
        self._reading: dict[asyncio.Task[Any], float] = {}
        self._idle: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the stall watchdog (call from the running loop)."""
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._watchdog is not None:
            await cancel_and_wait(self._watchdog, what="stall watchdog")
            self._watchdog = None

    async def _watch(self) -> None:
        period = max(0.05, min(self._stall_s, self._idle_s) / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for task, since in list(self._writing.items()):
                if now - since >= self._stall_s and task not in self._stalled:
                    self._stalled.add(task)
                    task.cancel()
            for task, since in list(self._reading.items()):
                if now - since >= self._idle_s and task not in self._idle:
                    self._idle.add(task)
                    task.cancel()

    async def _write(self, context: Context, msg: pb.AnalyzeResponse) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._writing[task] = time.monotonic()
        try:
            await context.write(msg)
        finally:
            self._writing.pop(task, None)

    async def Analyze(  # noqa: N802 - name fixed by the generated base class
        self, request_iterator: AsyncIterator[pb.AnalyzeRequest], context: Context
    ) -> None:
        session: Session | None = None
        reason = "error"
        metrics = self._manager.metrics
        durability = self._manager.durability
        try:
            async for req in self._requests(request_iterator):
                t_recv = time.perf_counter_ns()
                kind = req.WhichOneof("kind")
                if session is None:
                    if kind != "config":
                        raise StreamError(
                            ErrorKind.FAILED_PRECONDITION,
                            f"first message must set 'config'; got {kind or 'an empty request'}",
                        )
                    session = await self._open(req.config, context)
                    continue
                if kind == "config":
                    raise StreamError(
                        ErrorKind.FAILED_PRECONDITION,
                        "config: already received; it is sent once, as the first message",
                    )
                if kind != "audio":
                    raise StreamError(
                        ErrorKind.INVALID_ARGUMENT, "request: empty; set 'config' or 'audio'"
                    )
                chunk = req.audio
                s = session
                pending = s.begin(seq=chunk.seq, data=chunk.data, capture_t_ns=chunk.capture_t_ns)
                if isinstance(pending, ChunkOutcome):
                    outcome = pending
                else:
                    outcome = await self._batcher.run(s, pending)
                    flow = self._flow.update(s, len(chunk.data))
                    if flow is not None:
                        await self._write(context, pb.AnalyzeResponse(flow=flow_to_pb(flow)))
                backlog = s.refined_backlog()
                if backlog is not None:  # flow control: the refined tier catches up first
                    await asyncio.wrap_future(backlog)
                for w in outcome.warnings:
                    metrics.chunk_rejected(w.kind.value.lower())
                    await self._write(context, warning_to_pb(w))
                if outcome.analysis is not None:
                    a = outcome.analysis
                    checkpoint = await durability.commit(s, a, stored=outcome.stored)
                    if a.seq > s.suppress_upto:  # a resumed client has the earlier ones
                        msg = result_to_pb(
                            a,
                            server_processing_ns=time.perf_counter_ns() - t_recv,
                            checkpoint_seq=checkpoint,
                        )
                        await self._write(context, msg)
                    metrics.chunk_processed(
                        decode_s=s.stages.decode_s,
                        analyze_s=s.stages.analyze_s,
                        total_s=(time.perf_counter_ns() - t_recv) / 1e9,
                        onsets=len(a.onsets),
                        retracted_onsets=len(a.retracted_onsets),
                    )
            if session is None:
                raise StreamError(
                    ErrorKind.INVALID_ARGUMENT, "stream closed before 'config' was sent"
                )
            await self._offloader.run_in_pool(session.finish)
            await durability.finish(session)
            await self._write(context, pb.AnalyzeResponse(summary=summary_to_pb(session.summary())))
            reason = "completed"
        except StreamError as e:
            reason = e.kind.value.lower()
            metrics.chunk_rejected(reason)
            await context.abort(STATUS[e.kind], e.message)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task in self._idle:  # cancelled by the watchdog while waiting for a message
                self._idle.discard(task)
                task.uncancel()
                reason = "deadline_exceeded"
                metrics.chunk_rejected(reason)
                await context.abort(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"no message for {self._idle_s:g} s (read_idle_timeout_s); stream ended "
                    "(resume the session with config.resume to go on)",
                )
            if task in self._stalled:
                # The cancelled write leaves the call unable to send a status batch (it would
                # queue behind the unread results): the RPC is cancelled, resetting the stream.
                self._stalled.discard(task)
                reason = "stalled"
                message = (
                    f"client has not read results for {self._stall_s:.1f} s "
                    "(write_stall_timeout_s); stream ended"
                )
                log.info("session %s: %s", session.session_id if session else "-", message)
                context.set_code(grpc.StatusCode.RESOURCE_EXHAUSTED)
                context.set_details(message)
            else:
                reason = "cancelled"
            raise
        finally:
            if session is not None:
                self._flow.forget(session)
                self._manager.close(session, reason=reason)

    async def _requests(
        self, requests: AsyncIterator[pb.AnalyzeRequest]
    ) -> AsyncIterator[pb.AnalyzeRequest]:
        """``requests``, each wait for the next one shown to the watchdog (``_reading``)."""
        task = asyncio.current_task()
        assert task is not None
        it = aiter(requests)
        reading, now = self._reading, time.monotonic
        while True:
            reading[task] = now()
            try:
                req = await anext(it)
            except StopAsyncIteration:
                return
            finally:
                reading.pop(task, None)
            yield req

    async def _open(self, cfg: pb.StreamConfig, context: Context) -> Session:
        """Start or resume the session the config asks for and send StreamStarted (and, on a
        resume, the stored results the client missed)."""
        durability = self._manager.durability
        if not cfg.HasField("resume"):
            settings = settings_from_pb(cfg, default_session_id=self._manager.new_session_id())
            session = await durability.start(settings)
            await self._write(context, self._started(session))
            return session
        if not cfg.session_id:
            raise StreamError(
                ErrorKind.INVALID_ARGUMENT,
                "config.session_id: required with config.resume (the session to resume)",
            )
        settings = settings_from_pb(cfg, default_session_id="")
        r = cfg.resume
        last = r.last_result_seq if r.HasField("last_result_seq") else None
        resumed = await durability.resume(settings, last_result_seq=last)
        session = resumed.session
        await self._write(context, self._started(session, replayed=len(resumed.replay)))
        checkpoint = session.checkpoint_seq if session.checkpoint_seq >= 0 else None
        for a in resumed.replay:
            msg = result_to_pb(a, server_processing_ns=0, checkpoint_seq=checkpoint, replayed=True)
            await self._write(context, msg)
        return session

    def _started(self, session: Session, *, replayed: int | None = None) -> pb.AnalyzeResponse:
        an = session.analyzer
        c = an.config
        return pb.AnalyzeResponse(
            started=pb.StreamStarted(
                session_id=session.session_id,
                node_id=self._node_id,
                analysis_sample_rate_hz=c.analysis_rate_hz,
                frame_samples=c.frame_samples,
                hop_samples=c.hop_samples,
                algorithmic_latency_s=an.algorithmic_latency_s,
                analyses=analyses_to_pb(session.settings.analyses),
                max_chunk_bytes=session.max_chunk_bytes,
                next_audio_seq=session.next_seq,
                resumed=replayed is not None,
                replayed_results=replayed or 0,
                credit_chunks=self._flow.credit_chunks,
            )
        )

    async def GetSession(  # noqa: N802 - name fixed by the generated base class
        self, request: pb.GetSessionRequest, context: Context
    ) -> pb.GetSessionResponse:
        try:
            session = self._manager.get(request.session_id)
        except StreamError as e:
            await context.abort(STATUS[e.kind], e.message)
        onsets, truncated = session.onset_log()
        return pb.GetSessionResponse(
            session_id=session.session_id,
            active=session.active,
            summary=summary_to_pb(session.summary()),
            onsets=[onset_to_pb(o) for o in onsets],
            notes=[note_to_pb(n) for n in session.note_log()],
            onsets_truncated=truncated,
        )
