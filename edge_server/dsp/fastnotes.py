"""Causal decisions on the note network's outputs: onsets and fast-tier note on/off events.

Onsets fire on the upward crossing of the onset probability, with a refractory time. Notes
are anchored on onsets: after an onset fires, every key whose key-onset probability crosses
its threshold within ``note_window_s`` is reported as struck at that onset's time (so a chord
is one onset, and timing comes from the sharper onset output). A key that crosses the
threshold with no onset open is reported too when its probability clears the higher
``orphan_threshold``. A sounding note ends when its key-on probability stays below
``off_threshold`` for ``off_frames`` hops, or when the key is struck again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .notenet import LOWEST_KEY_MIDI, N_KEYS, NetOutput

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, kw_only=True)
class DecisionParams:
    """Thresholds (chosen on held-out self-rendered clips by ``training/tune.py``).

    Attributes
    ----------
    onset_threshold : float
        Onset probability that fires an onset, ``(0, 1)``.
    refractory_s : float
        Minimum time between two onsets, s.
    min_short_flux : float
        An onset also needs the short frame's bands to rise: the sum of their positive
        changes (log10 units) in the firing hop or the one before must reach this. The network
        alone sometimes echoes a strong strike ~10 hops later, where nothing rises (held-out
        rendered clips, gate 0 -> 5: onset F1 0.982 -> 0.985 clean, 0.911 -> 0.918 in rooms;
        real attacks rise by 10-100, a held tone's short bands wobble by up to ~3).
    onset_offset_s : float
        Reported onset time = end of the firing hop minus this, s.
    key_threshold : float
        Key-onset probability that reports a note inside an onset's window, ``(0, 1)``.
    orphan_threshold : float
        Key-onset probability that reports a note with no onset open, ``(0, 1)``.
    note_window_s : float
        How long after an onset its notes may still be reported, s (bounds fast-note latency).
    rearm_s : float
        The same key is not reported twice within this time, s.
    off_threshold : float
        Key-on probability under which a note is ending, ``(0, 1)``.
    off_frames : int
        Hops below ``off_threshold`` that end a note.
    """

    onset_threshold: float = 0.7
    refractory_s: float = 0.03
    min_short_flux: float = 5.0
    onset_offset_s: float = 0.0104
    key_threshold: float = 0.4
    orphan_threshold: float = 0.8
    note_window_s: float = 0.045
    rearm_s: float = 0.06
    off_threshold: float = 0.35
    off_frames: int = 3


@dataclass(frozen=True)
class NoteOn:
    note_id: int
    midi_pitch: int
    onset_s: float
    detected_at_s: float
    velocity: float
    confidence: float


@dataclass(frozen=True)
class NoteOff:
    note_id: int
    midi_pitch: int
    onset_s: float
    offset_s: float


@dataclass(frozen=True)
class Decisions:
    """What one block of hops decided.

    Attributes
    ----------
    onset_frames : ndarray, shape (n_onsets,), int64
        Absolute hop indices that fired an onset.
    onset_strengths : ndarray, shape (n_onsets,), float32
        Onset probability at those hops, ``[0, 1]``.
    note_ons, note_offs : list
        Fast-tier note events, in time order.
    """

    onset_frames: npt.NDArray[np.int64]
    onset_strengths: F32
    note_ons: list[NoteOn]
    note_offs: list[NoteOff]


class FastNoteDecoder:
    """Per-stream decision state.

    Parameters
    ----------
    hop_s : float
        Hop duration, s.
    time_shift_s : float
        Stream time of the end of hop ``t`` is ``(t + 1) * hop_s - time_shift_s``.
    params : DecisionParams
        Thresholds.
    """

    def __init__(self, *, hop_s: float, time_shift_s: float, params: DecisionParams) -> None:
        self.p = params
        self.hop_s = hop_s
        self.shift_s = time_shift_s
        self._refr_n = max(1, round(params.refractory_s / hop_s))
        self._win_n = max(1, round(params.note_window_s / hop_s))
        self._rearm_n = max(1, round(params.rearm_s / hop_s))
        self._frame = 0
        self._prev_onset_p = 0.0
        self._prev_rise = 0.0
        self._prev_short: F32 = np.zeros(0, dtype=np.float32)
        self._last_onset = -(10**9)
        self._prev_key: F32 = np.zeros(N_KEYS, dtype=np.float32)
        self._last_struck: npt.NDArray[np.int64] = np.full(N_KEYS, -(10**9), dtype=np.int64)
        self._below: list[int] = [0] * N_KEYS
        self._open: dict[int, tuple[int, float]] = {}  # sounding key -> (note id, onset_s)
        self._next_id = 1

    def state(self) -> dict[str, npt.NDArray[np.generic]]:
        """Decision state as arrays (int64 counters, float32/64 per-key vectors; ``sounding``
        holds each sounding key's note id, -1 for the others)."""
        sounding = np.full(N_KEYS, -1, dtype=np.int64)
        sounding_onset = np.zeros(N_KEYS, dtype=np.float64)
        for k, (nid, onset_s) in self._open.items():
            sounding[k], sounding_onset[k] = nid, onset_s
        return {
            "counts": np.array([self._frame, self._last_onset, self._next_id], dtype=np.int64),
            "prev_p": np.array([self._prev_onset_p, self._prev_rise], dtype=np.float64),
            "prev_short": self._prev_short.copy(),
            "prev_key": self._prev_key.copy(),
            "last_struck": self._last_struck.copy(),
            "sounding": sounding,
            "sounding_onset": sounding_onset,
            "below": np.asarray(self._below, dtype=np.int64),
        }

    def restore(self, state: dict[str, npt.NDArray[np.generic]]) -> None:
        self._frame, self._last_onset, self._next_id = (int(v) for v in state["counts"])
        self._prev_onset_p, self._prev_rise = (float(v) for v in state["prev_p"])
        self._prev_short = np.asarray(state["prev_short"], dtype=np.float32).copy()
        self._prev_key = np.asarray(state["prev_key"], dtype=np.float32).copy()
        self._last_struck = np.asarray(state["last_struck"], dtype=np.int64).copy()
        sounding = np.asarray(state["sounding"], dtype=np.int64)
        onsets = np.asarray(state["sounding_onset"], dtype=np.float64)
        self._below = [int(v) for v in state["below"]]
        self._open = {
            int(k): (int(sounding[k]), float(onsets[k])) for k in np.flatnonzero(sounding >= 0)
        }

    def _end_s(self, frame: int) -> float:
        return (frame + 1) * self.hop_s - self.shift_s

    def process(self, out: NetOutput, short_bands: F32, *, notes: bool) -> Decisions:
        """Decide on the next hops.

        Parameters
        ----------
        out : NetOutput
            The network's outputs for these hops.
        short_bands : ndarray, shape (n_frames, n_short_bands), float32
            The short frame's log bands (network inputs) of the same hops.
        notes : bool
            Decide notes too (``False``: onsets only).
        """
        return decide_many([self], out.stream_axis(), short_bands[None], notes=notes)[0]

    def _decide(
        self,
        out: NetOutput,
        rise: list[float],
        hot: list[bool],
        low: npt.NDArray[np.bool_],
        *,
        notes: bool,
    ) -> Decisions:
        """The per-hop decisions, from the batched pre-computations of :func:`decide_many`."""
        p = self.p
        onsets: list[int] = []
        strengths: list[float] = []
        ons: list[NoteOn] = []
        offs: list[NoteOff] = []
        n = int(out.onset.shape[0])
        for i, v in enumerate(out.onset.tolist()):
            t = self._frame
            gate = max(rise[i], self._prev_rise)
            self._prev_rise = rise[i]
            if (
                v >= p.onset_threshold
                and self._prev_onset_p < p.onset_threshold
                and t - self._last_onset >= self._refr_n
                and gate >= p.min_short_flux
            ):
                onsets.append(t)
                strengths.append(v)
                self._last_onset = t
            self._prev_onset_p = v
            if notes:
                self._ends_at(t, low[i], offs)
                if hot[i]:
                    prev = out.key_onset[i - 1] if i else self._prev_key
                    self._strikes_at(t, out, i, prev, ons, offs)
            self._frame += 1
        if notes and n:
            self._prev_key = out.key_onset[-1].copy()
        return Decisions(
            onset_frames=np.asarray(onsets, dtype=np.int64),
            onset_strengths=np.asarray(strengths, dtype=np.float32),
            note_ons=ons,
            note_offs=offs,
        )

    def _ends_at(self, t: int, low: npt.NDArray[np.bool_], offs: list[NoteOff]) -> None:
        """Count hops below ``off_threshold`` for the sounding keys; end the long-quiet ones."""
        for k in sorted(self._open):  # key order: the same after a restore
            if low[k]:
                self._below[k] += 1
                if self._below[k] >= self.p.off_frames:
                    self._end(k, t, offs)
            else:
                self._below[k] = 0

    def _end(self, k: int, t: int, offs: list[NoteOff]) -> None:
        nid, onset_s = self._open.pop(k)
        offs.append(NoteOff(nid, k + LOWEST_KEY_MIDI, onset_s, self._end_s(t)))
        self._below[k] = 0

    def _strikes_at(
        self, t: int, out: NetOutput, i: int, prev: F32, ons: list[NoteOn], offs: list[NoteOff]
    ) -> None:
        p = self.p
        q = out.key_onset[i]
        end_s = self._end_s(t)
        in_window = t - self._last_onset < self._win_n
        thr = p.key_threshold if in_window else p.orphan_threshold
        rising = (q >= thr) & (t - self._last_struck >= self._rearm_n)
        # a key reports once per strike: it must have been below threshold since its last report
        rising &= (prev < thr) | (self._last_struck < self._last_onset)
        if not rising.any():
            return
        onset_s = (
            max(self._end_s(self._last_onset) - p.onset_offset_s, 0.0)
            if in_window
            else max(end_s - p.onset_offset_s - p.note_window_s / 2, 0.0)
        )
        vel = float(out.velocity[i])
        for k in np.flatnonzero(rising).tolist():
            if k in self._open:  # a re-struck key ends its previous note
                self._end(k, t, offs)
            nid = self._next_id
            self._next_id += 1
            ons.append(NoteOn(nid, k + LOWEST_KEY_MIDI, onset_s, end_s, vel, float(q[k])))
            self._last_struck[k] = t
            self._open[k] = (nid, onset_s)


def decide_many(
    decoders: Sequence[FastNoteDecoder], out: NetOutput, short_bands: F32, *, notes: bool
) -> list[Decisions]:
    """Decisions for several streams' next hops (same params, same hop count).

    The array work (short-band rise, which hops have a hot key, which keys are below the off
    threshold) is done once for all streams; the per-hop logic then runs per stream.

    Parameters
    ----------
    decoders : sequence of FastNoteDecoder
        One per stream.
    out : NetOutput
        Batched network outputs, leading axis streams (see ``notenet.process_many``).
    short_bands : ndarray, shape (n_streams, n_frames, n_short_bands), float32
        Each stream's short-frame log bands of the same hops.
    notes : bool
        Decide notes too.
    """
    bn, n = int(short_bands.shape[0]), int(short_bands.shape[1])
    prev = np.empty((bn, 1, short_bands.shape[2]), dtype=np.float32)
    for b, d in enumerate(decoders):
        prev[b, 0] = d._prev_short if d._prev_short.size else short_bands[b, 0]
        if n:
            d._prev_short = short_bands[b, -1].copy()
    rows = np.concatenate((prev, short_bands), axis=1)
    rise = np.maximum(np.diff(rows, axis=1), 0.0).sum(axis=2).tolist()
    p = decoders[0].p
    if notes and n:
        k_min = min(p.key_threshold, p.orphan_threshold)
        hot = (out.key_onset.max(axis=2) >= k_min).tolist()
        low = out.key_on < p.off_threshold
    else:
        hot = [[False] * n] * bn
        low = np.zeros((bn, n, 0), dtype=bool)
    return [
        d._decide(out.stream(b), rise[b], hot[b], low[b], notes=notes)
        for b, d in enumerate(decoders)
    ]
