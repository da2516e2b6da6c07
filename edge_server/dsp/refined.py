"""Refined notes: Basic Pitch posteriors decided at our onset times.

Each onset the stream reported (the anchors) is decided once the stitched posteriors cover
it plus ``lookahead_s``: every key whose Basic Pitch onset posterior peaks above
``onset_threshold`` within ``±match_s`` of the anchor, or whose note posterior rises above
``note_threshold`` right after it, is a note struck at the anchor's time (so refined notes
carry our ~5 ms onset timing, not the model's 11.6 ms frames). Basic Pitch onsets far from
any anchor (onsets our detector missed) become notes at their own time when they clear
``orphan_threshold``. A note ends when its note posterior stays below ``off_threshold`` for
``off_frames`` frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .basicpitch import FRAME_SAMPLES, N_KEYS, SAMPLE_RATE_HZ, Posteriors

F32 = npt.NDArray[np.float32]
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE_HZ
LOWEST_KEY_MIDI = 21


@dataclass(frozen=True, kw_only=True)
class RefinedParams:
    """Thresholds (chosen on held-out self-rendered clips by ``training/tune_refined.py``)."""

    onset_threshold: float = 0.7
    note_threshold: float = 0.4
    note_rise: float = 0.15
    orphan_threshold: float = 0.8
    match_s: float = 0.035
    lookahead_s: float = 0.12
    off_threshold: float = 0.3
    off_frames: int = 3
    history_s: float = 4.0


@dataclass(frozen=True)
class RefinedNote:
    """A key struck at ``onset_s`` (``anchor`` = index of the anchor onset, -1 if none)."""

    anchor: int
    midi_pitch: int
    onset_s: float
    confidence: float


@dataclass(frozen=True)
class RefinedOff:
    anchor: int
    midi_pitch: int
    onset_s: float
    offset_s: float


@dataclass
class _Open:
    anchor: int
    onset_s: float
    frame: int  # first frame to scan for the end
    below: int = 0


@dataclass
class RefinedDecoder:
    """Per-stream state: posterior history, undecided anchors, sounding notes."""

    params: RefinedParams = field(default_factory=RefinedParams)
    first_frame: int = 0

    def __post_init__(self) -> None:
        self._first = self.first_frame  # stream frame of row 0
        self._note: F32 = np.zeros((0, N_KEYS), dtype=np.float32)
        self._onset: F32 = np.zeros((0, N_KEYS), dtype=np.float32)
        self._anchors: list[tuple[int, float]] = []  # (anchor id, time) not yet decided
        self._decided_until_s = self.first_frame * FRAME_S  # orphan onsets before this were handled
        self._last_struck_s: F32 = np.full(N_KEYS, -1e9, dtype=np.float32)
        self._open: dict[int, _Open] = {}

    @property
    def covered_s(self) -> float:
        return float((self._first + self._note.shape[0]) * FRAME_S)

    def add_anchor(self, anchor_id: int, time_s: float) -> None:
        self._anchors.append((anchor_id, time_s))

    def _frame(self, t_s: float) -> int:
        return int(np.floor(t_s / FRAME_S))

    def _rows(self, f0: int, f1: int) -> slice:
        n = self._note.shape[0]
        return slice(min(max(f0 - self._first, 0), n), min(max(f1 - self._first, 0), n))

    def push(
        self, post: Posteriors, *, final: bool = False
    ) -> tuple[list[RefinedNote], list[RefinedOff]]:
        """Add the next stitched frames; return the notes and note ends now decided."""
        if post.first_frame != self._first + self._note.shape[0]:
            raise ValueError("posteriors must arrive in order without gaps")
        self._note = np.concatenate((self._note, post.note))
        self._onset = np.concatenate((self._onset, post.onset))
        notes: list[RefinedNote] = []
        offs: list[RefinedOff] = []
        p = self.params
        horizon_s = self.covered_s - (0.0 if final else p.lookahead_s)
        ready = [a for a in self._anchors if a[1] <= horizon_s]
        self._anchors = [a for a in self._anchors if a[1] > horizon_s]
        events: list[tuple[float, int, int, float]] = []  # (time, anchor, key, confidence)
        for anchor_id, t in ready:
            events += [(t, anchor_id, k, c) for k, c in self._keys_at(t)]
        events += self._orphans(horizon_s, [t for _, t in ready])
        for t, anchor_id, k, conf in sorted(events):
            if t - self._last_struck_s[k] < 0.05:
                continue
            self._last_struck_s[k] = t
            prev = self._open.pop(k, None)
            if prev is not None:
                offs.append(RefinedOff(prev.anchor, k + LOWEST_KEY_MIDI, prev.onset_s, t))
            notes.append(RefinedNote(anchor_id, k + LOWEST_KEY_MIDI, t, conf))
            self._open[k] = _Open(anchor_id, t, self._frame(t) + 2)
        self._decided_until_s = max(self._decided_until_s, horizon_s)
        offs += self._ends(final)
        self._trim()
        return notes, offs

    def _keys_at(self, t_s: float) -> list[tuple[int, float]]:
        p = self.params
        f = self._frame(t_s)
        m = int(np.ceil(p.match_s / FRAME_S))
        on = self._onset[self._rows(f - m, f + m + 1)]
        peak = on.max(axis=0) if on.shape[0] else np.zeros(N_KEYS, dtype=np.float32)
        after = self._note[self._rows(f + 1, f + 6)]
        before = self._note[self._rows(f - 4, f)]
        a = after.mean(axis=0) if after.shape[0] else np.zeros(N_KEYS, dtype=np.float32)
        b = before.mean(axis=0) if before.shape[0] else np.zeros(N_KEYS, dtype=np.float32)
        rise = (a >= p.note_threshold) & (a - b >= p.note_rise)
        hit = (peak >= p.onset_threshold) | rise
        return [(k, float(max(peak[k], a[k]))) for k in np.flatnonzero(hit).tolist()]

    def _orphans(
        self, horizon_s: float, anchor_times: list[float]
    ) -> list[tuple[float, int, int, float]]:
        """Basic Pitch onset peaks in (decided_until, horizon] with no anchor near them."""
        p = self.params
        f0, f1 = self._frame(self._decided_until_s), self._frame(horizon_s)
        rows = self._rows(f0 - 1, f1 + 1)
        on = self._onset[rows]
        if on.shape[0] < 3:
            return []
        base = rows.start + self._first
        mid = on[1:-1]
        peaks = (mid >= p.orphan_threshold) & (mid >= on[:-2]) & (mid > on[2:])
        out = []
        near = np.asarray(anchor_times + [t for _, t in self._anchors], dtype=np.float64)
        for i, k in zip(*np.nonzero(peaks), strict=True):
            t = (base + 1 + int(i) + 0.5) * FRAME_S
            if t <= self._decided_until_s or t > horizon_s:
                continue
            if near.size and np.min(np.abs(near - t)) <= 0.05:
                continue
            out.append((t, -1, int(k), float(mid[i, k])))
        return out

    def _ends(self, final: bool) -> list[RefinedOff]:
        p = self.params
        end_frame = self._first + self._note.shape[0]
        offs = []
        for k, o in list(self._open.items()):
            col = self._note[self._rows(o.frame, end_frame), k]
            stop = None
            for j, v in enumerate(col.tolist()):
                o.below = o.below + 1 if v < p.off_threshold else 0
                if o.below >= p.off_frames:
                    stop = o.frame + j - p.off_frames + 1
                    break
            o.frame = end_frame if stop is None else stop
            if stop is None and final:
                stop = end_frame
            if stop is not None:
                offs.append(
                    RefinedOff(
                        o.anchor,
                        k + LOWEST_KEY_MIDI,
                        o.onset_s,
                        max(stop * FRAME_S, o.onset_s + FRAME_S),
                    )
                )
                del self._open[k]
        return offs

    def _trim(self) -> None:
        keep = int(self.params.history_s / FRAME_S)
        extra = self._note.shape[0] - keep
        if extra > 0:
            self._note = self._note[extra:]
            self._onset = self._onset[extra:]
            self._first += extra
