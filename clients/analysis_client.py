"""Typed async client for the AudioAnalysis gRPC service."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType

import grpc
from seminote.edge.v1 import analysis_pb2 as pb
from seminote.edge.v1 import analysis_pb2_grpc as pb_grpc

from .opus import FRAME_MS, OpusAudio
from .wav import WavAudio

Audio = WavAudio | OpusAudio


def audio_chunks(audio: Audio, chunk_frames: int) -> list[tuple[bytes, float]]:
    """(payload, duration s) per chunk: PCM in ``chunk_frames`` frames, Opus one packet each."""
    if isinstance(audio, OpusAudio):
        return [(p, FRAME_MS / 1000) for p in audio.packets]
    step = chunk_frames * audio.frame_bytes
    d = audio.data
    return [
        (d[i : i + step], len(d[i : i + step]) / audio.frame_bytes / audio.sample_rate_hz)
        for i in range(0, len(d), step)
    ]


_ENCODINGS = {
    "PCM16_LE": pb.AUDIO_ENCODING_PCM16_LE,
    "FLOAT32_LE": pb.AUDIO_ENCODING_FLOAT32_LE,
    "OPUS": pb.AUDIO_ENCODING_OPUS,
}
_ANALYSES = {
    "ONSETS": pb.ANALYSIS_ONSETS,
    "FEATURES": pb.ANALYSIS_FEATURES,
    "NOTES": pb.ANALYSIS_NOTES,
    "REFINED_NOTES": pb.ANALYSIS_REFINED_NOTES,
}
#: the analyses a gRPC stream may ask for, by the names StreamOptions takes
STREAM_ANALYSES = tuple(_ANALYSES)


@dataclass(frozen=True, slots=True)
class Onset:
    time_s: float
    strength: float
    detected_at_s: float


@dataclass(frozen=True, slots=True)
class Note:
    """A note event: ``tier`` FAST or REFINED; ``action`` ON, OFF, CONFIRM, CORRECT, RETRACT."""

    note_id: int
    tier: str
    action: str
    midi_pitch: int
    onset_s: float
    offset_s: float
    velocity: float
    confidence: float


def note_from_pb(n: pb.NoteEvent) -> Note:
    return Note(
        n.note_id,
        pb.NoteTier.Name(n.tier).removeprefix("NOTE_TIER_"),
        pb.NoteAction.Name(n.action).removeprefix("NOTE_ACTION_"),
        n.midi_pitch,
        n.onset_s,
        n.offset_s,
        n.velocity,
        n.confidence,
    )


@dataclass(frozen=True, slots=True)
class FeatureFrames:
    first_time_s: float
    hop_s: float
    rms_db: tuple[float, ...]
    spectral_centroid_hz: tuple[float, ...]
    spectral_flux: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class StreamStartedEvent:
    session_id: str
    node_id: str
    analysis_sample_rate_hz: int
    frame_samples: int
    hop_samples: int
    algorithmic_latency_s: float
    max_chunk_bytes: int
    #: the seq the server expects next (after a resume: the snapshot's seq + 1)
    next_audio_seq: int = 0
    resumed: bool = False
    replayed_results: int = 0
    #: chunks the client may have unanswered (0: not announced)
    credit_chunks: int = 0


@dataclass(frozen=True, slots=True)
class ChunkResultEvent:
    seq: int
    onsets: tuple[Onset, ...]
    features: FeatureFrames | None
    stream_time_s: float
    #: Capture (send) of the chunk to arrival of its result, client clock, ms; None in-process.
    latency_ms: float | None
    server_processing_ms: float
    #: audio up to this seq is in a stored snapshot (``None``: nothing confirmed)
    checkpoint_seq: int | None = None
    #: replayed from the session store after a resume
    replayed: bool = False
    notes: tuple[Note, ...] = ()
    #: onsets of earlier results withdrawn (their ``time_s``): no key was struck there
    retracted_onsets_s: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamWarningEvent:
    code: str
    message: str
    seq: int


@dataclass(frozen=True, slots=True)
class StreamSummaryEvent:
    session_id: str
    chunks_processed: int
    chunks_dropped: int
    chunks_lost: int
    onsets: int
    notes: int
    stream_time_s: float
    #: refined-tier events decided at the end of the stream
    final_notes: tuple[Note, ...] = ()


@dataclass(frozen=True, slots=True)
class FlowControlEvent:
    """The node asks for bigger chunks (``coarsen``) or says any size is fine again."""

    coarsen: bool
    suggested_chunk_frames: int
    credit_chunks: int
    queue_delay_ms: float


StreamEvent = (
    StreamStartedEvent
    | ChunkResultEvent
    | StreamWarningEvent
    | StreamSummaryEvent
    | FlowControlEvent
)


@dataclass
class FlowState:
    """What the sender knows of the node's flow control (updated by the reading side).

    Credits: at most ``credit_chunks`` chunks unanswered (0: the node announced none). A
    real-time sender out of credits, or asked to coarsen, keeps the newly captured audio and
    sends it merged into the next chunk (up to the node's largest chunk): nothing is dropped,
    there are just fewer messages. A sender that is not real-time waits for credits instead.
    """

    credit_chunks: int = 0
    coarsen_frames: int = 0
    max_chunk_bytes: int = 0
    next_seq: int = 0
    answered_upto: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    #: set once the node accepted the config (StreamStarted)
    started: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def in_credit(self) -> bool:
        return not self.credit_chunks or self.next_seq - self.answered_upto < self.credit_chunks

    def answered(self, seq: int) -> None:
        if seq + 1 > self.answered_upto:
            self.answered_upto = seq + 1
            self.changed.set()

    def on_event(self, event: StreamEvent) -> None:
        if isinstance(event, StreamStartedEvent):
            self.credit_chunks = event.credit_chunks
            self.max_chunk_bytes = event.max_chunk_bytes
            self.started.set()
        elif isinstance(event, ChunkResultEvent) and not event.replayed:
            self.answered(event.seq)
        elif isinstance(event, StreamWarningEvent) and event.seq >= 0:
            self.answered(event.seq)
        elif isinstance(event, FlowControlEvent):
            self.coarsen_frames = event.suggested_chunk_frames if event.coarsen else 0


@dataclass(frozen=True, kw_only=True)
class StreamOptions:
    """How to stream.

    Attributes
    ----------
    analyses : tuple of str
        Any of ``"ONSETS"``, ``"FEATURES"``, ``"NOTES"`` (fast tier), ``"REFINED_NOTES"``
        (fast and refined tiers).
    chunk_frames : int
        Sample frames per chunk (1024 at 44.1 kHz = 23 ms).
    realtime : bool
        Pace chunks at the audio's own rate (each sent when its last sample would have been
        captured); otherwise send as fast as flow control allows.
    session_id : str
        Empty: the server assigns one.
    """

    analyses: tuple[str, ...] = ("ONSETS", "FEATURES")
    chunk_frames: int = 1024
    realtime: bool = False
    session_id: str = ""
    client_name: str = "edge-client"

    def __post_init__(self) -> None:
        unknown = [a for a in self.analyses if a not in _ANALYSES]
        if unknown:
            raise ValueError(
                f"StreamOptions.analyses: unknown {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(_ANALYSES)}"
            )
        if self.chunk_frames < 1:
            raise ValueError(f"StreamOptions.chunk_frames must be >= 1, not {self.chunk_frames}")


def config_request(audio: Audio, options: StreamOptions) -> pb.AnalyzeRequest:
    encoding = "OPUS" if isinstance(audio, OpusAudio) else audio.encoding
    return pb.AnalyzeRequest(
        config=pb.StreamConfig(
            sample_rate_hz=audio.sample_rate_hz,
            encoding=_ENCODINGS[encoding],
            channels=audio.channels,
            analyses=[_ANALYSES[a] for a in options.analyses],
            session_id=options.session_id,
            client_name=options.client_name,
        )
    )


def event_from_pb(msg: pb.AnalyzeResponse, now_ns: int) -> StreamEvent | None:
    kind = msg.WhichOneof("kind")
    if kind == "result":
        r = msg.result
        feats = None
        if r.HasField("features"):
            f = r.features
            feats = FeatureFrames(
                f.first_time_s,
                f.hop_s,
                tuple(f.rms_db),
                tuple(f.spectral_centroid_hz),
                tuple(f.spectral_flux),
            )
        return ChunkResultEvent(
            seq=r.seq,
            onsets=tuple(Onset(o.time_s, o.strength, o.detected_at_s) for o in r.onsets),
            features=feats,
            stream_time_s=r.stream_time_s,
            latency_ms=(now_ns - r.capture_t_ns) / 1e6 if r.capture_t_ns else None,
            server_processing_ms=r.server_processing_ns / 1e6,
            checkpoint_seq=r.checkpoint_seq if r.HasField("checkpoint_seq") else None,
            replayed=r.replayed,
            notes=tuple(note_from_pb(n) for n in r.notes),
            retracted_onsets_s=tuple(r.retracted_onsets_s),
        )
    if kind == "started":
        s = msg.started
        return StreamStartedEvent(
            s.session_id,
            s.node_id,
            s.analysis_sample_rate_hz,
            s.frame_samples,
            s.hop_samples,
            s.algorithmic_latency_s,
            s.max_chunk_bytes,
            s.next_audio_seq,
            s.resumed,
            s.replayed_results,
            s.credit_chunks,
        )
    if kind == "warning":
        w = msg.warning
        return StreamWarningEvent(pb.WarningCode.Name(w.code), w.message, w.seq)
    if kind == "summary":
        return summary_from_pb(msg.summary)
    if kind == "flow":
        fc = msg.flow
        return FlowControlEvent(
            coarsen=fc.advice == pb.FlowControl.ADVICE_COARSEN,
            suggested_chunk_frames=fc.suggested_chunk_frames,
            credit_chunks=fc.credit_chunks,
            queue_delay_ms=fc.queue_delay_ms,
        )
    return None  # a message type from a newer server: ignored


def summary_from_pb(s: pb.StreamSummary) -> StreamSummaryEvent:
    return StreamSummaryEvent(
        s.session_id,
        s.chunks_processed,
        s.chunks_dropped,
        s.chunks_lost,
        s.onsets,
        s.notes,
        s.stream_time_s,
        tuple(note_from_pb(n) for n in s.final_notes),
    )


class AnalysisClient:
    """Async client of one edge node. Use as ``async with AnalysisClient(target) as c:``."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._channel = grpc.aio.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", 4 << 20),
                ("grpc.keepalive_time_ms", 20_000),
            ],
        )
        # generated *_pb2_grpc code carries no annotations
        self._stub = pb_grpc.AudioAnalysisStub(self._channel)  # type: ignore[no-untyped-call]

    @property
    def stub(self) -> pb_grpc.AudioAnalysisStub:
        return self._stub

    @property
    def channel(self) -> grpc.aio.Channel:
        return self._channel

    async def __aenter__(self) -> AnalysisClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def wait_ready(self, timeout_s: float = 10.0) -> None:
        await asyncio.wait_for(self._channel.channel_ready(), timeout_s)

    async def stream(self, audio: Audio, options: StreamOptions) -> AsyncIterator[StreamEvent]:
        """Stream ``audio`` and yield events as they arrive; raises ``grpc.aio.AioRpcError``.

        Audio is sent once the node has accepted the config (StreamStarted): a refused stream
        (``RESOURCE_EXHAUSTED`` at capacity, ``INVALID_ARGUMENT``) then reports the node's own
        status. A write racing the node's refusal would make grpc.aio report ``INTERNAL:
        Internal error from Core`` instead (grpc/grpc#36066), and the first chunk is cut to
        the node's ``max_chunk_bytes``, which only StreamStarted tells."""
        call = self._stub.Analyze()
        flow = FlowState()
        sender = asyncio.create_task(self._send(call, audio, options, flow))
        try:
            while True:
                msg = await call.read()
                if msg is grpc.aio.EOF:
                    if not flow.started.is_set():  # the sender still waits for it
                        raise RuntimeError("the node ended the stream before StreamStarted")
                    break
                event = event_from_pb(msg, time.monotonic_ns())
                if event is not None:
                    flow.on_event(event)
                    yield event
            await sender
        finally:
            call.cancel()  # no-op when finished; ends the RPC when the caller stopped early
            if not sender.done():
                sender.cancel()
            # the read side already raised, the caller broke out early, or we were cancelled:
            # the sender's own error (if any) says nothing new
            with contextlib.suppress(
                asyncio.CancelledError, grpc.aio.AioRpcError, asyncio.InvalidStateError
            ):
                await sender

    @staticmethod
    async def _send(
        call: grpc.aio.StreamStreamCall[pb.AnalyzeRequest, pb.AnalyzeResponse],
        audio: Audio,
        options: StreamOptions,
        flow: FlowState,
    ) -> None:
        await call.write(config_request(audio, options))
        pcm = isinstance(audio, WavAudio)
        frame_bytes = audio.frame_bytes if isinstance(audio, WavAudio) else 1
        t0 = time.monotonic()
        due = t0
        pending = bytearray()

        async def send(data: bytes) -> None:
            await flow.started.wait()  # see stream()
            chunk = pb.AudioChunk(seq=flow.next_seq, data=data, capture_t_ns=time.monotonic_ns())
            flow.next_seq += 1
            await call.write(pb.AnalyzeRequest(audio=chunk))

        async def send_pending() -> None:
            """The kept audio, in chunks of at most the node's largest (whole frames)."""
            await flow.started.wait()  # the largest is in StreamStarted
            limit = flow.max_chunk_bytes // frame_bytes * frame_bytes or len(pending)
            for i in range(0, len(pending), limit):
                await send(bytes(pending[i : i + limit]))
            pending.clear()

        for payload, duration_s in audio_chunks(audio, options.chunk_frames):
            due += duration_s
            if options.realtime:
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if not pcm:  # Opus: one packet per chunk, nothing to merge
                while not options.realtime and not flow.in_credit:
                    flow.changed.clear()
                    await flow.changed.wait()
                await send(payload)
                continue
            pending += payload
            if options.realtime:
                if not flow.in_credit or len(pending) < flow.coarsen_frames * frame_bytes:
                    continue  # merged into the next chunk (flow control; nothing dropped)
            else:
                while not flow.in_credit:
                    flow.changed.clear()
                    await flow.changed.wait()
            await send_pending()
        if pending:
            await send_pending()
        await call.done_writing()

    async def get_session(self, session_id: str) -> pb.GetSessionResponse:
        resp: pb.GetSessionResponse = await self._stub.GetSession(
            pb.GetSessionRequest(session_id=session_id)
        )
        return resp
