"""Protobuf messages <-> pipeline types."""

from __future__ import annotations

from seminote.edge.v1 import analysis_pb2 as pb

from ..pipeline.errors import invalid
from ..pipeline.events import (
    ChunkAnalysis,
    NoteAction,
    NoteEvent,
    NoteTier,
    Onset,
    SessionSummary,
    StreamWarningEvent,
    WarningKind,
)
from ..pipeline.flow import FlowAdvice
from ..pipeline.settings import AnalysisKind, Encoding, StreamSettings, make_settings

_ENCODINGS = {
    pb.AUDIO_ENCODING_PCM16_LE: Encoding.PCM16_LE,
    pb.AUDIO_ENCODING_FLOAT32_LE: Encoding.FLOAT32_LE,
    pb.AUDIO_ENCODING_OPUS: Encoding.OPUS,
}
_ANALYSES = {
    pb.ANALYSIS_ONSETS: AnalysisKind.ONSETS,
    pb.ANALYSIS_FEATURES: AnalysisKind.FEATURES,
    pb.ANALYSIS_NOTES: AnalysisKind.NOTES,
    pb.ANALYSIS_REFINED_NOTES: AnalysisKind.REFINED_NOTES,
}
_TIERS = {NoteTier.FAST: pb.NOTE_TIER_FAST, NoteTier.REFINED: pb.NOTE_TIER_REFINED}
_ACTIONS = {
    NoteAction.ON: pb.NOTE_ACTION_ON,
    NoteAction.OFF: pb.NOTE_ACTION_OFF,
    NoteAction.CONFIRM: pb.NOTE_ACTION_CONFIRM,
    NoteAction.CORRECT: pb.NOTE_ACTION_CORRECT,
    NoteAction.RETRACT: pb.NOTE_ACTION_RETRACT,
}
_ANALYSES_BACK = {v: k for k, v in _ANALYSES.items()}
_WARNINGS = {
    WarningKind.SEQUENCE_GAP: pb.WARNING_CODE_SEQUENCE_GAP,
    WarningKind.DUPLICATE_SEQUENCE: pb.WARNING_CODE_DUPLICATE_SEQUENCE,
    WarningKind.MALFORMED_AUDIO: pb.WARNING_CODE_MALFORMED_AUDIO,
}


def settings_from_pb(cfg: pb.StreamConfig, *, default_session_id: str) -> StreamSettings:
    encoding = _ENCODINGS.get(cfg.encoding)
    if encoding is None:
        name = (
            pb.AudioEncoding.Name(cfg.encoding)
            if cfg.encoding in pb.AudioEncoding.values()
            else "?"
        )
        raise invalid(
            f"config.encoding={cfg.encoding} ({name}) is not accepted; allowed: "
            "AUDIO_ENCODING_PCM16_LE (1), AUDIO_ENCODING_FLOAT32_LE (2), AUDIO_ENCODING_OPUS (3)"
        )
    analyses: set[AnalysisKind] = set()
    for a in cfg.analyses:
        kind = _ANALYSES.get(a)
        if kind is None:
            raise invalid(
                f"config.analyses contains {a}, which this node does not offer; "
                "allowed: ANALYSIS_ONSETS (1), ANALYSIS_FEATURES (2), ANALYSIS_NOTES (3), "
                "ANALYSIS_REFINED_NOTES (4)"
            )
        analyses.add(kind)
    return make_settings(
        sample_rate_hz=cfg.sample_rate_hz,
        encoding=encoding,
        channels=cfg.channels,
        analyses=frozenset(analyses),
        session_id=cfg.session_id or default_session_id,
        client_name=cfg.client_name,
    )


def analyses_to_pb(kinds: frozenset[AnalysisKind]) -> list[pb.Analysis]:
    return sorted(_ANALYSES_BACK[k] for k in kinds)


def onset_to_pb(o: Onset) -> pb.OnsetEvent:
    return pb.OnsetEvent(time_s=o.time_s, strength=o.strength, detected_at_s=o.detected_at_s)


def note_to_pb(n: NoteEvent) -> pb.NoteEvent:
    return pb.NoteEvent(
        note_id=n.note_id,
        tier=_TIERS[n.tier],
        action=_ACTIONS[n.action],
        midi_pitch=n.midi_pitch,
        onset_s=n.onset_s,
        offset_s=n.offset_s,
        velocity=n.velocity,
        confidence=n.confidence,
    )


def result_to_pb(
    a: ChunkAnalysis,
    *,
    server_processing_ns: int,
    checkpoint_seq: int | None = None,
    replayed: bool = False,
) -> pb.AnalyzeResponse:
    r = pb.ChunkResult(
        seq=a.seq,
        capture_t_ns=a.capture_t_ns,
        server_processing_ns=server_processing_ns,
        stream_time_s=a.stream_time_s,
        onsets=[onset_to_pb(o) for o in a.onsets],
        notes=[note_to_pb(n) for n in a.notes],
        replayed=replayed,
        retracted_onsets_s=a.retracted_onsets,
    )
    if checkpoint_seq is not None:
        r.checkpoint_seq = checkpoint_seq
    f = a.features
    if f is not None:
        ff = r.features
        ff.first_time_s = f.first_time_s
        ff.hop_s = f.hop_s
        ff.rms_db.extend(f.rms_db.tolist())
        ff.spectral_centroid_hz.extend(f.centroid_hz.tolist())
        ff.spectral_flux.extend(f.flux.tolist())
    return pb.AnalyzeResponse(result=r)


def warning_to_pb(w: StreamWarningEvent) -> pb.AnalyzeResponse:
    return pb.AnalyzeResponse(
        warning=pb.StreamWarning(code=_WARNINGS[w.kind], message=w.message, seq=w.seq)
    )


def flow_to_pb(f: FlowAdvice) -> pb.FlowControl:
    return pb.FlowControl(
        advice=pb.FlowControl.ADVICE_COARSEN if f.coarsen else pb.FlowControl.ADVICE_OK,
        suggested_chunk_frames=f.suggested_chunk_frames,
        credit_chunks=f.credit_chunks,
        queue_delay_ms=f.queue_delay_s * 1e3,
    )


def summary_to_pb(s: SessionSummary) -> pb.StreamSummary:
    return pb.StreamSummary(
        session_id=s.session_id,
        chunks_processed=s.chunks_processed,
        chunks_dropped=s.chunks_dropped,
        chunks_lost=s.chunks_lost,
        chunks_malformed=s.chunks_malformed,
        onsets=s.onsets,
        notes=s.notes,
        stream_time_s=s.stream_time_s,
        final_notes=[note_to_pb(n) for n in s.final_notes],
    )
