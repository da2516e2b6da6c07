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

from .events import ChunkAnalysis, Features, Onset, SessionSummary

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


def encode_result(a: ChunkAnalysis) -> bytes:
    obj: dict[str, Any] = {
        "seq": a.seq,
        "capture_t_ns": a.capture_t_ns,
        "t": a.stream_time_s,
        "onsets": [[o.time_s, o.strength, o.detected_at_s] for o in a.onsets],
    }
    if a.features is not None:
        obj["features"] = _features_obj(a.features)
    return _dumps(obj)


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
    return ChunkAnalysis(
        seq=int(obj["seq"]),
        capture_t_ns=int(obj["capture_t_ns"]),
        onsets=tuple(Onset(t, s, d) for t, s, d in obj["onsets"]),
        features=features,
        stream_time_s=float(obj["t"]),
    )


def chunk_records(a: ChunkAnalysis) -> tuple[OutRecord, ...]:
    """The durable records of one chunk: always ``events`` (so the cloud sees every seq),
    plus ``features`` when the session asked for them."""
    events = _dumps(
        {
            "t": a.stream_time_s,
            "onsets": [[o.time_s, o.strength, o.detected_at_s] for o in a.onsets],
        }
    )
    out = [OutRecord("events", PRIORITY_EVENTS, a.seq, events)]
    if a.features is not None:
        out.append(
            OutRecord("features", PRIORITY_FEATURES, a.seq, _dumps(_features_obj(a.features)))
        )
    return tuple(out)


def summary_record(s: SessionSummary, *, seq: int) -> OutRecord:
    obj = {
        "chunks_processed": s.chunks_processed,
        "chunks_dropped": s.chunks_dropped,
        "chunks_lost": s.chunks_lost,
        "chunks_malformed": s.chunks_malformed,
        "onsets": s.onsets,
        "notes": s.notes,
        "stream_time_s": s.stream_time_s,
    }
    return OutRecord("summary", PRIORITY_SUMMARY, seq, _dumps(obj))


def record_checksum(session_id: str, seq: int, kind: str, payload: bytes) -> int:
    """CRC-32 of one record's identity and payload; summed (mod 2**64) over a set of records it
    gives an order-independent checksum that edge and cloud can compare."""
    return zlib.crc32(payload, zlib.crc32(f"{session_id}|{seq}|{kind}|".encode()))


CHECKSUM_MOD = 1 << 64
