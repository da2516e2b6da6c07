"""Internal result types: what a session produces, independent of any wire format."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from .records import StoredChunk

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


class NoteTier(enum.Enum):
    #: from the causal note network, <= ~50 ms after the onset
    FAST = "FAST"
    #: from Basic Pitch on overlapping 2 s windows, ~2 s after the onset
    REFINED = "REFINED"


class NoteAction(enum.Enum):
    #: a note started (fast: every note; refined: a note the fast tier missed)
    ON = "ON"
    #: a note ended (``offset_s`` set)
    OFF = "OFF"
    #: the refined tier agrees with fast note ``note_id``
    CONFIRM = "CONFIRM"
    #: fast note ``note_id`` was another key: ``midi_pitch`` is the corrected one
    CORRECT = "CORRECT"
    #: fast note ``note_id`` was not played
    RETRACT = "RETRACT"


@dataclass(frozen=True, slots=True)
class NoteEvent:
    note_id: int
    tier: NoteTier
    action: NoteAction
    midi_pitch: int
    onset_s: float
    #: 0 while the note sounds
    offset_s: float = 0.0
    velocity: float = 0.0
    confidence: float = 0.0


@dataclass(frozen=True, slots=True)
class ChunkAnalysis:
    seq: int
    capture_t_ns: int
    onsets: tuple[Onset, ...]
    features: Features | None
    stream_time_s: float
    notes: tuple[NoteEvent, ...] = ()
    #: times of onsets of earlier results withdrawn: the fast tier heard no key struck there
    retracted_onsets: tuple[float, ...] = ()


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
    #: refined-tier events decided only when the stream ended (its last window)
    final_notes: tuple[NoteEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class ChunkOutcome:
    """Result of offering one chunk: an analysis, or ``None`` when the chunk was dropped."""

    analysis: ChunkAnalysis | None
    warnings: tuple[StreamWarningEvent, ...] = ()
    #: the analysis as the session store keeps it, encoded by the batch worker (off the event
    #: loop); None: not prepared (no store, or a path that encodes at commit)
    stored: StoredChunk | None = None
