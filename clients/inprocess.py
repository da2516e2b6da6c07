"""Run the server's own pipeline in this process, chunked exactly as a client streams."""

from __future__ import annotations

from collections.abc import Iterator

from edge_server.dsp.analyzer import AnalyzerConfig
from edge_server.pipeline.events import NoteEvent
from edge_server.pipeline.records import note_row
from edge_server.pipeline.refined_tier import RefinedPool
from edge_server.pipeline.session import Session, SessionLimits
from edge_server.pipeline.settings import DEFAULT_ANALYSES, AnalysisKind, Encoding, make_settings

from .analysis_client import (
    Audio,
    ChunkResultEvent,
    FeatureFrames,
    Note,
    Onset,
    StreamEvent,
    StreamOptions,
    StreamSummaryEvent,
    audio_chunks,
)
from .opus import OpusAudio


def analyze_inprocess(
    audio: Audio, options: StreamOptions, analyzer_config: AnalyzerConfig | None = None
) -> Iterator[StreamEvent]:
    """Same chunking, decoding and analysis as the gRPC path; no latency figures."""
    settings = make_settings(
        sample_rate_hz=audio.sample_rate_hz,
        encoding=Encoding.OPUS if isinstance(audio, OpusAudio) else Encoding(audio.encoding),
        channels=audio.channels,
        analyses=frozenset(AnalysisKind(a) for a in options.analyses) or DEFAULT_ANALYSES,
        session_id=options.session_id or "inprocess",
        client_name=options.client_name,
    )
    pool = RefinedPool(workers=1) if AnalysisKind.REFINED_NOTES in settings.analyses else None
    try:
        session = Session(
            settings=settings,
            analyzer_config=analyzer_config or AnalyzerConfig(),
            limits=SessionLimits(),
            refined_pool=pool,
        )
        yield from _run(session, audio, options)
    finally:
        if pool is not None:
            pool.shutdown()


def _note(n: NoteEvent) -> Note:
    return Note(*note_row(n))


def _run(session: Session, audio: Audio, options: StreamOptions) -> Iterator[StreamEvent]:
    for seq, (payload, _) in enumerate(audio_chunks(audio, options.chunk_frames)):
        out = session.process_chunk(seq=seq, data=payload, capture_t_ns=0)
        backlog = session.refined_backlog()
        if backlog is not None:  # the same flow control as the gRPC transport
            backlog.result()
        a = out.analysis
        if a is None:
            continue
        f = a.features
        yield ChunkResultEvent(
            seq=a.seq,
            onsets=tuple(Onset(o.time_s, o.strength, o.detected_at_s) for o in a.onsets),
            features=None
            if f is None
            else FeatureFrames(
                f.first_time_s,
                f.hop_s,
                tuple(f.rms_db.tolist()),
                tuple(f.centroid_hz.tolist()),
                tuple(f.flux.tolist()),
            ),
            stream_time_s=a.stream_time_s,
            latency_ms=None,
            server_processing_ms=0.0,
            notes=tuple(_note(n) for n in a.notes),
            retracted_onsets_s=a.retracted_onsets,
        )
    session.finish()
    s = session.summary()
    yield StreamSummaryEvent(
        s.session_id,
        s.chunks_processed,
        s.chunks_dropped,
        s.chunks_lost,
        s.onsets,
        s.notes,
        s.stream_time_s,
        tuple(_note(n) for n in s.final_notes),
    )
