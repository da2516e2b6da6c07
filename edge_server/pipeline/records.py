"""Results as stored and forwarded: JSON bytes independent of any wire protocol.

Two uses:

* the session store's results log (:func:`encode_result` / :func:`decode_result`), replayed to a
  resuming client exactly as first computed;
* records for the durable edge-to-cloud stream (:func:`chunk_records`, :func:`summary_record`),
  one per (session, seq, kind), with a priority: ``summary`` 0 (most important), ``events``
  1 (onsets, notes), ``features`` 2 (per-hop features, the bulk).

Floats survive the round trip exactly: JSON carries Python's shortest repr of each float64, and
float32 values widen to float64 exactly.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from .events import ChunkAnalysis, Features, NoteAction, NoteEvent, NoteTier, Onset, SessionSummary

PRIORITY_SUMMARY = 0
PRIORITY_EVENTS = 1
PRIORITY_FEATURES = 2
KIND_PRIORITY = {
    "summary": PRIORITY_SUMMARY,
    "events": PRIORITY_EVENTS,
    "features": PRIORITY_FEATURES,
}


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One entry of the durable result stream."""

    kind: str
    priority: int
    seq: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """What a commit of one chunk writes, prepared off the event loop
    (:meth:`~edge_server.pipeline.durability.Durability.prepare`)."""

    #: :func:`encode_chunk`'s stored result and durable records
    result: bytes
    records: tuple[OutRecord, ...]
    #: the session's snapshot and config blob when this chunk is due for one, else None
    snapshot: bytes | None = None
    config: bytes | None = None


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _features_obj(f: Features) -> dict[str, Any]:
    return {
        "t0": f.first_time_s,
        "hop": f.hop_s,
        "rms_db": f.rms_db.tolist(),
        "centroid_hz": f.centroid_hz.tolist(),
        "flux": f.flux.tolist(),
    }


def note_row(n: NoteEvent) -> list[Any]:
    """A note event as a row: id, tier, action, pitch, onset, offset, velocity, confidence
    (the field order of ``clients.analysis_client.Note`` too)."""
    return [
        n.note_id,
        n.tier.value,
        n.action.value,
        n.midi_pitch,
        n.onset_s,
        n.offset_s,
        n.velocity,
        n.confidence,
    ]


def _note_from_row(r: list[Any]) -> NoteEvent:
    return NoteEvent(
        note_id=int(r[0]),
        tier=NoteTier(r[1]),
        action=NoteAction(r[2]),
        midi_pitch=int(r[3]),
        onset_s=float(r[4]),
        offset_s=float(r[5]),
        velocity=float(r[6]),
        confidence=float(r[7]),
    )


def encode_chunk(a: ChunkAnalysis) -> tuple[bytes, tuple[OutRecord, ...]]:
    """The stored result and the durable records of one chunk, encoded once.

    Records: always ``events`` (so the cloud sees every seq), plus ``features`` when the
    session asked for them. The result is ``{"seq", "capture_t_ns", "events", "features"}``
    built from the records' own bytes.
    """
    ev: dict[str, Any] = {
        "t": a.stream_time_s,
        "onsets": [[o.time_s, o.strength, o.detected_at_s] for o in a.onsets],
    }
    if a.notes:
        ev["notes"] = [note_row(n) for n in a.notes]
    if a.retracted_onsets:
        ev["retracted_onsets"] = list(a.retracted_onsets)
    events = _dumps(ev)
    records = [OutRecord("events", PRIORITY_EVENTS, a.seq, events)]
    features = b"null"
    if a.features is not None:
        features = _dumps(_features_obj(a.features))
        records.append(OutRecord("features", PRIORITY_FEATURES, a.seq, features))
    head = b'{"seq":%d,"capture_t_ns":%d,"events":' % (a.seq, a.capture_t_ns)
    return head + events + b',"features":' + features + b"}", tuple(records)


def encode_result(a: ChunkAnalysis) -> bytes:
    return encode_chunk(a)[0]


def chunk_records(a: ChunkAnalysis) -> tuple[OutRecord, ...]:
    return encode_chunk(a)[1]


def decode_result(blob: bytes) -> ChunkAnalysis:
    obj = json.loads(blob)
    f = obj.get("features")
    features = None
    if f is not None:
        features = Features(
            first_time_s=f["t0"],
            hop_s=f["hop"],
            rms_db=np.asarray(f["rms_db"], np.float32),
            centroid_hz=np.asarray(f["centroid_hz"], np.float32),
            flux=np.asarray(f["flux"], np.float32),
        )
    ev = obj["events"]
    return ChunkAnalysis(
        seq=int(obj["seq"]),
        capture_t_ns=int(obj["capture_t_ns"]),
        onsets=tuple(Onset(t, s, d) for t, s, d in ev["onsets"]),
        features=features,
        stream_time_s=float(ev["t"]),
        notes=tuple(_note_from_row(r) for r in ev.get("notes", ())),
        retracted_onsets=tuple(float(t) for t in ev.get("retracted_onsets", ())),
    )


def summary_record(s: SessionSummary, *, seq: int) -> OutRecord:
    obj: dict[str, Any] = {
        "chunks_processed": s.chunks_processed,
        "chunks_dropped": s.chunks_dropped,
        "chunks_lost": s.chunks_lost,
        "chunks_malformed": s.chunks_malformed,
        "onsets": s.onsets,
        "notes": s.notes,
        "stream_time_s": s.stream_time_s,
    }
    if s.final_notes:
        obj["notes_final"] = [note_row(n) for n in s.final_notes]
    return OutRecord("summary", PRIORITY_SUMMARY, seq, _dumps(obj))


def record_checksum(session_id: str, seq: int, kind: str, payload: bytes) -> int:
    """CRC-32 of one record's identity and payload; summed (mod 2**64) over a set of records it
    gives an order-independent checksum that edge and cloud can compare."""
    return zlib.crc32(payload, zlib.crc32(f"{session_id}|{seq}|{kind}|".encode()))


CHECKSUM_MOD = 1 << 64
