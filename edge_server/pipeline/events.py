"""Internal result types: what a session produces, independent of any wire format."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Onset:
    time_s: float
    strength: float
    detected_at_s: float


@dataclass(frozen=True, slots=True)
class Features:
    """Per-hop features of the hops one chunk completed (parallel arrays, shape (n_hops,))."""

    first_time_s: float
    hop_s: float
    rms_db: F32
    centroid_hz: F32
    flux: F32


@dataclass(frozen=True, slots=True)
class ChunkAnalysis:
    seq: int
    capture_t_ns: int
    onsets: tuple[Onset, ...]
    features: Features | None
    stream_time_s: float


class WarningKind(enum.Enum):
    SEQUENCE_GAP = "SEQUENCE_GAP"
    DUPLICATE_SEQUENCE = "DUPLICATE_SEQUENCE"
    MALFORMED_AUDIO = "MALFORMED_AUDIO"


@dataclass(frozen=True, slots=True)
class StreamWarningEvent:
    kind: WarningKind
    message: str
    seq: int


@dataclass(frozen=True, slots=True)
class SessionSummary:
    session_id: str
    chunks_processed: int
    chunks_dropped: int
    chunks_lost: int
    chunks_malformed: int
    onsets: int
    notes: int
    stream_time_s: float


@dataclass(frozen=True, slots=True)
class ChunkOutcome:
    """Result of offering one chunk: an analysis, or ``None`` when the chunk was dropped."""

    analysis: ChunkAnalysis | None
    warnings: tuple[StreamWarningEvent, ...] = ()
