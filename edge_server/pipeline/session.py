"""One musician's stream: sequence checks, decoding and causal analysis."""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ..dsp.analyzer import F32, AnalysisBlock, AnalyzerConfig, StreamAnalyzer
from .decode import decode_audio
from .errors import ErrorKind, StreamError
from .eventlog import NoteLog, OnsetLog
from .events import (
    ChunkAnalysis,
    ChunkOutcome,
    Features,
    NoteAction,
    NoteEvent,
    NoteTier,
    Onset,
    SessionSummary,
    StreamWarningEvent,
    WarningKind,
)
from .opus_decode import MAX_PACKET_BYTES, MalformedPacket, OpusPacketDecoder
from .refined_tier import RefinedPool, RefinedTier
from .settings import AnalysisKind, Encoding, StreamSettings
from .snapshot import decode_snapshot, encode_snapshot


@dataclass(frozen=True, kw_only=True)
class SessionLimits:
    """Bounds on one session.

    Attributes
    ----------
    max_chunk_s : float
        Longest chunk accepted, s of audio (sets the byte limit for the stream's format).
    max_onset_log : int
        Onsets kept for :meth:`Session.onset_log`; older ones are dropped first and counted
        (24 bytes each, :mod:`.eventlog`).
    max_note_log : int
        Note events kept for :meth:`Session.note_log` (48 bytes each), oldest dropped first.
    """

    max_chunk_s: float = 0.5
    max_onset_log: int = 2_000
    max_note_log: int = 2_000


@dataclass
class PendingChunk:
    """A chunk that passed the sequence checks, on its way through decode and analysis.

    ``analyzer`` is the session's analysis state when the chunk was accepted (a session closed
    meanwhile keeps it alive until the chunk is done)."""

    seq: int
    data: bytes
    capture_t_ns: int
    warnings: tuple[StreamWarningEvent, ...]
    analyzer: StreamAnalyzer
    t_analyze: float = 0.0


@dataclass
class StageTimes:
    """Time spent in each stage for the last chunk, s."""

    decode_s: float = 0.0
    analyze_s: float = 0.0


class Session:
    """Stateful analysis of one stream. Not thread-safe: feed chunks one at a time."""

    def __init__(
        self,
        *,
        settings: StreamSettings,
        analyzer_config: AnalyzerConfig,
        limits: SessionLimits,
        refined_pool: RefinedPool | None = None,
    ) -> None:
        self.settings = settings
        self.limits = limits
        self.analyzer_config = analyzer_config
        want_refined = AnalysisKind.REFINED_NOTES in settings.analyses
        if want_refined and refined_pool is None:
            raise StreamError(
                ErrorKind.INVALID_ARGUMENT,
                "config.analyses asks for ANALYSIS_REFINED_NOTES, which this node does not run",
            )
        self._want_notes = want_refined or AnalysisKind.NOTES in settings.analyses
        self._analyzer: StreamAnalyzer | None = StreamAnalyzer(
            input_rate_hz=settings.sample_rate_hz, config=analyzer_config, notes=self._want_notes
        )
        self._refined_pool = refined_pool if want_refined else None
        self._refined: RefinedTier | None = (
            None if self._refined_pool is None else RefinedTier(pool=self._refined_pool)
        )
        self.notes_total = 0
        self._final_notes: tuple[NoteEvent, ...] = ()
        self._final_stream_time_s = 0.0
        frames = int(limits.max_chunk_s * settings.sample_rate_hz)
        self.max_chunk_bytes = frames * settings.channels * settings.encoding.sample_bytes
        self.max_chunk_samples = frames
        self._opus: OpusPacketDecoder | None = None
        if settings.encoding is Encoding.OPUS:
            self._opus = OpusPacketDecoder(
                sample_rate_hz=settings.sample_rate_hz, channels=settings.channels
            )
            self.max_chunk_bytes = MAX_PACKET_BYTES
        self._want_onsets = AnalysisKind.ONSETS in settings.analyses
        self._want_features = AnalysisKind.FEATURES in settings.analyses
        self._next_seq = 0
        self.chunks_processed = 0
        self.chunks_dropped = 0
        self.chunks_lost = 0
        self.chunks_malformed = 0
        self.onsets_total = 0
        self._onset_log = OnsetLog(capacity=limits.max_onset_log)
        #: note events (both tiers); oldest dropped first
        self._note_log = NoteLog(capacity=limits.max_note_log)
        self.active = True
        self.started_monotonic = time.monotonic()
        self.ended_monotonic: float | None = None
        self.stages = StageTimes()
        #: fencing token from the session store (bumped by every resume)
        self.epoch = 0
        #: seq of the newest snapshot the store confirmed; -1: none
        self.checkpoint_seq = -1
        #: after a resume, results up to this seq are not sent again (the client has them)
        self.suppress_upto = -1
        #: set when a newer stream took the session over (resume): this one must end
        self.superseded = False
        #: the store keeps its results and snapshots for a resume (False: WebRTC, whose
        #: records are only forwarded)
        self.resumable = True

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def superseded_error(self) -> StreamError:
        """What a stream gets once a newer stream (a resume) took its session over."""
        return StreamError(
            ErrorKind.ABORTED,
            f"session {self.session_id} was resumed by a newer stream; this stream is closed",
        )

    def snapshot(self) -> bytes:
        """The analysis state and counters after the last chunk, as bytes (see
        :mod:`.snapshot`). The Opus decoder's state is not included: a resumed Opus stream
        restarts its decoder at the snapshot."""
        meta = {
            "next_seq": self._next_seq,
            "processed": self.chunks_processed,
            "dropped": self.chunks_dropped,
            "lost": self.chunks_lost,
            "malformed": self.chunks_malformed,
            "onsets": self.onsets_total,
            "notes": self.notes_total,
        }
        return encode_snapshot(arrays=self.analyzer.state(), meta=meta)

    def restore(self, blob: bytes) -> None:
        """Continue from :meth:`snapshot` bytes; raises ``ValueError`` if they do not fit."""
        arrays, meta = decode_snapshot(blob)
        self.analyzer.restore(arrays)
        self._next_seq = int(meta["next_seq"])
        self.chunks_processed = int(meta["processed"])
        self.chunks_dropped = int(meta["dropped"])
        self.chunks_lost = int(meta["lost"])
        self.chunks_malformed = int(meta["malformed"])
        self.onsets_total = int(meta["onsets"])
        self.notes_total = int(meta.get("notes", 0))
        if self._refined_pool is not None:
            # the refined tier restarts at the resume point (its 2 s of context is not stored)
            start = round(self.analyzer.stream_time_s * self.analyzer_config.analysis_rate_hz)
            self._refined = RefinedTier(pool=self._refined_pool, start_sample=start)

    @property
    def session_id(self) -> str:
        return self.settings.session_id

    @property
    def analyzer(self) -> StreamAnalyzer:
        """The live analysis state; gone once the session is closed."""
        if self._analyzer is None:
            raise StreamError(ErrorKind.FAILED_PRECONDITION, f"session {self.session_id} is closed")
        return self._analyzer

    @property
    def stream_time_s(self) -> float:
        a = self._analyzer
        return a.stream_time_s if a is not None else self._final_stream_time_s

    def check_seq(self, seq: int) -> tuple[bool, tuple[StreamWarningEvent, ...]]:
        """Sequence policy: duplicates (seq below the next expected) are dropped with a warning;
        a jump forward counts the skipped chunks as lost and continues."""
        if seq < self._next_seq:
            self.chunks_dropped += 1
            w = StreamWarningEvent(
                WarningKind.DUPLICATE_SEQUENCE,
                f"audio.seq={seq} already processed (next expected {self._next_seq}); "
                "chunk dropped",
                seq,
            )
            return False, (w,)
        warnings: tuple[StreamWarningEvent, ...] = ()
        if seq > self._next_seq:
            lost = seq - self._next_seq
            self.chunks_lost += lost
            warnings = (
                StreamWarningEvent(
                    WarningKind.SEQUENCE_GAP,
                    f"audio.seq={seq} skips {lost} chunk(s) after {self._next_seq - 1}; "
                    "they are counted as lost and analysis continues",
                    seq,
                ),
            )
        return True, warnings

    def process_chunk(self, *, seq: int, data: bytes, capture_t_ns: int) -> ChunkOutcome:
        """Validate, decode and analyse one chunk (CPU work; call off the event loop when big).

        Raises :class:`StreamError` for audio the stream cannot continue from (wrong size,
        non-finite samples), or ABORTED once the session was taken over by a resume; the
        transport then ends the stream. Malformed Opus packets are
        not errors: they are dropped, counted and reported as a warning.

        The same as :meth:`begin`, :meth:`decode`, ``analyzer.process`` and :meth:`complete`;
        the batch scheduler (:mod:`.batcher`) runs those steps for many sessions at once.
        """
        pending = self.begin(seq=seq, data=data, capture_t_ns=capture_t_ns)
        if isinstance(pending, ChunkOutcome):
            return pending
        samples = self.decode(pending)
        if isinstance(samples, ChunkOutcome):
            return samples
        return self.complete(pending, pending.analyzer.process(samples))

    def begin(self, *, seq: int, data: bytes, capture_t_ns: int) -> PendingChunk | ChunkOutcome:
        """Sequence checks (cheap; on the event loop). A ChunkOutcome: nothing to analyse."""
        if self.superseded:
            raise self.superseded_error()
        accept, warnings = self.check_seq(seq)
        if not accept:
            return ChunkOutcome(None, warnings)
        return PendingChunk(seq, data, capture_t_ns, warnings, self.analyzer)

    def decode(self, chunk: PendingChunk) -> F32 | ChunkOutcome:
        """The chunk's mono samples, or the outcome of a dropped malformed packet."""
        t0 = time.perf_counter()
        seq, data, warnings = chunk.seq, chunk.data, chunk.warnings
        if self._opus is not None:
            if len(data) > self.max_chunk_bytes:
                raise StreamError(
                    ErrorKind.RESOURCE_EXHAUSTED,
                    f"audio.data is {len(data)} bytes; an Opus packet is at most "
                    f"{self.max_chunk_bytes} bytes",
                )
            try:
                samples = self._opus.decode(data)
            except MalformedPacket as e:
                # policy: count, drop, tell the client; the stream and its state go on
                self._next_seq = seq + 1
                self.chunks_malformed += 1
                w = StreamWarningEvent(
                    WarningKind.MALFORMED_AUDIO,
                    f"audio.seq={seq}: malformed Opus packet dropped ({e}); "
                    f"{self.chunks_malformed} so far",
                    seq,
                )
                return ChunkOutcome(None, (*warnings, w))
        else:
            samples = decode_audio(
                data,
                encoding=self.settings.encoding,
                channels=self.settings.channels,
                max_bytes=self.max_chunk_bytes,
            )
        self._next_seq = seq + 1
        self.stages.decode_s = time.perf_counter() - t0
        chunk.t_analyze = time.perf_counter()
        return samples

    def complete(self, chunk: PendingChunk, block: AnalysisBlock) -> ChunkOutcome:
        """Events of an analysed chunk: onsets, features, notes (and the counters)."""
        seq = chunk.seq
        onsets: tuple[Onset, ...] = ()
        if self._want_onsets and block.onset_times_s.size:
            onsets = tuple(
                Onset(t, s, d)
                for t, s, d in zip(
                    block.onset_times_s.tolist(),
                    block.onset_strengths.tolist(),
                    block.onset_detected_at_s.tolist(),
                    strict=True,
                )
            )
            self._onset_log.extend(onsets)
            self.onsets_total += len(onsets)
        retracted: tuple[float, ...] = ()
        if self._want_onsets and block.onset_retractions:
            retracted = tuple(r.onset_s for r in block.onset_retractions)
            self._onset_log.retract(retracted)
            self.onsets_total -= len(retracted)
        features = None
        if self._want_features and block.n_frames:
            features = Features(
                first_time_s=block.first_frame_time_s,
                hop_s=self.analyzer_config.hop_s,
                rms_db=block.rms_db,
                centroid_hz=block.centroid_hz,
                flux=block.flux,
            )
        notes = self._notes(block) if self._want_notes else ()
        self.chunks_processed += 1
        self.stages.analyze_s = time.perf_counter() - chunk.t_analyze
        analysis = ChunkAnalysis(
            seq=seq,
            capture_t_ns=chunk.capture_t_ns,
            onsets=onsets,
            features=features,
            stream_time_s=chunk.analyzer.stream_time_s,
            notes=notes,
            retracted_onsets=retracted,
        )
        return ChunkOutcome(analysis, chunk.warnings)

    def _notes(self, block: AnalysisBlock) -> tuple[NoteEvent, ...]:
        fast = [
            NoteEvent(
                note_id=n.note_id,
                tier=NoteTier.FAST,
                action=NoteAction.ON,
                midi_pitch=n.midi_pitch,
                onset_s=n.onset_s,
                velocity=n.velocity,
                confidence=n.confidence,
            )
            for n in block.note_ons
        ]
        fast += [
            NoteEvent(
                note_id=n.note_id,
                tier=NoteTier.FAST,
                action=NoteAction.OFF,
                midi_pitch=n.midi_pitch,
                onset_s=n.onset_s,
                offset_s=n.offset_s,
            )
            for n in block.note_offs
        ]
        fast.sort(key=lambda e: (e.offset_s or e.onset_s, e.action is NoteAction.ON))
        refined: list[NoteEvent] = []
        if self._refined is not None:
            refined = self._refined.add(block.samples, block.onset_times_s.tolist(), block.note_ons)
        return self._record((*fast, *refined))

    def _record(self, events: tuple[NoteEvent, ...]) -> tuple[NoteEvent, ...]:
        """Count the new notes and keep the events for GetSession."""
        self.notes_total += sum(e.action is NoteAction.ON for e in events)
        self._note_log.extend(events)
        return events

    def refined_backlog(self) -> Future[Any] | None:
        """A refined-tier window to wait for before the next chunk (see RefinedTier.backlog)."""
        return None if self._refined is None else self._refined.backlog()

    def finish(self) -> tuple[NoteEvent, ...]:
        """End of stream: decide the refined tier's last window (blocks for up to a few model
        runs; call off the event loop). The events also go into :meth:`summary`."""
        if self._refined is None or self._analyzer is None:
            return ()
        self._final_notes = self._record(tuple(self._refined.finish()))
        return self._final_notes

    def onset_log(self) -> tuple[list[Onset], int]:
        """Retained onsets and how many older ones were dropped from the log."""
        log = self._onset_log.items()
        return log, self.onsets_total - len(log)

    def note_log(self) -> list[NoteEvent]:
        """Retained note events of both tiers, in the order they were sent."""
        return self._note_log.items()

    def summary(self) -> SessionSummary:
        return SessionSummary(
            session_id=self.session_id,
            chunks_processed=self.chunks_processed,
            chunks_dropped=self.chunks_dropped,
            chunks_lost=self.chunks_lost,
            chunks_malformed=self.chunks_malformed,
            onsets=self.onsets_total,
            notes=self.notes_total,
            stream_time_s=self.stream_time_s,
            final_notes=self._final_notes,
        )

    def close(self) -> None:
        """End the session: the summary and onset log stay (for GetSession), the analysis
        state (buffers, decoder) is released."""
        if self.active:
            self.active = False
            self.ended_monotonic = time.monotonic()
            self._final_stream_time_s = self.stream_time_s
            self._analyzer = None
            self._opus = None
