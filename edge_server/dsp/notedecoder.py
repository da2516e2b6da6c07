"""Fast-tier notes: classify each onset's keys a few hops after it fires; end notes by level.

Per stream, :class:`OnsetNoteDecoder` keeps the magnitude spectra of the last hops and the
onsets still waiting for their decision hop (``onset hop + DECISION_HOPS``). When a block of
hops reaches it, the onset's pitch-grid spectra go to the classifier
(:class:`.onsetnotes.OnsetNoteNet`) together with every other stream's due onsets
(:func:`decide_notes_many`), and each key over ``key_threshold`` becomes a ``NoteOn`` at
the onset's time. A key reported within ``rearm_s`` before is not reported again (two
onsets detected close together would otherwise both claim one strike).

A sounding note ends (``NoteOff``) when its key is struck again, or when the level of its
first three harmonics (:func:`key_levels`) has stayed ``off_drop`` below the note's peak, or
under ``off_floor``, for ``off_hops`` hops.

The classifier also checks the onset itself: it was trained to give every key a low
probability at onsets where no key was struck (the onset network's false onsets). An onset
whose strongest key stays under ``onset_confirm_threshold`` is withdrawn
(:class:`OnsetRetraction`), ``DECISION_HOPS`` hops after it was reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from .filterbank import log_compress
from .onsetnotes import (
    DECISION_HOPS,
    LOWEST_KEY_MIDI,
    N_KEYS,
    REL_HOPS,
    SHORT_REL_HOPS,
    SHORT_SAMPLES,
    OnsetNoteNet,
    short_magnitudes,
)
from .pitchgrid import LOG_MUL, GridMap, pitch_spectrum

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
#: spectra kept per stream: enough for an onset fired in the last hop of the previous block
RING_HOPS = DECISION_HOPS - min(REL_HOPS) + 1


@dataclass(frozen=True, kw_only=True)
class NoteParams:
    """Fast-tier decision settings (chosen on held-out self-rendered clips).

    ``key_threshold`` by ``training.tune_notes`` (mean held-out note F1 of the clean and the
    room copy; 2026-12-07, the classifier retrained on the GRU network's onsets): 0.35 / 0.40 /
    **0.45** / 0.50 / 0.55 -> 0.7635 / 0.7655 / **0.7660** / 0.7645 / 0.7625 (clean 0.806 / 0.808 /
    0.810 / 0.809 / 0.807, room 0.721 / 0.723 / 0.722 / 0.720 / 0.718).

    ``onset_confirm_threshold`` by ``training.tune_notes`` (mean held-out onset F1 of the
    clean, room and Opus copies, 2026-12-08): 0 (never withdraw) / 0.02 / **0.05** / 0.08 /
    0.10 / 0.15 -> 0.9145 / 0.9158 / **0.9170** / 0.9165 / 0.9153 / 0.9101
    (``python -m training.tune_notes --copies 3 --onset-thresholds 0.35``, 1.6 min; clean 0.9460
    -> 0.9479, room 0.8638 -> 0.8653, Opus 0.9336 -> 0.9378).

    Attributes
    ----------
    key_threshold : float
        Classifier probability that reports a key as struck, ``(0, 1)``.
    rearm_s : float
        A key is not reported again within this time of its last report, s.
    off_drop : float
        A note is ending when its level is this far below its peak (log10 units).
    off_floor : float
        ... or below this absolute level (log10 units of ``1 + 1000 |X|``).
    off_hops : int
        Hops the ending condition must hold.
    onset_confirm_threshold : float
        An onset whose strongest key the classifier gives less than this is withdrawn,
        ``[0, 1]`` (0: onsets are never withdrawn).
    """

    key_threshold: float = 0.45
    rearm_s: float = 0.06
    off_drop: float = 1.0
    off_floor: float = 0.25
    off_hops: int = 3
    onset_confirm_threshold: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.onset_confirm_threshold <= 1.0:
            raise ValueError(
                "notes.onset_confirm_threshold must be in [0, 1], "
                f"not {self.onset_confirm_threshold}"
            )


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
class OnsetRetraction:
    """An onset reported earlier (at ``onset_s``) in which the classifier heard no key struck:
    its strongest key had probability ``key_prob`` < ``onset_confirm_threshold``."""

    onset_s: float
    key_prob: float


#: one stream's fast-tier events of a block
NoteEvents = tuple[list[NoteOn], list[NoteOff], list[OnsetRetraction]]


_EMPTY = np.zeros((0, 0, 0), dtype=np.float32)


class OnsetNoteDecoder:
    """One stream's fast-note state.

    Parameters
    ----------
    n_bins : int
        Magnitude bins per hop (``frame_samples // 2 + 1``).
    hop_samples : int
        Hop, samples at the analysis rate.
    hop_s : float
        Hop duration, s.
    time_shift_s : float
        Stream time of the end of hop ``t`` is ``(t + 1) * hop_s - time_shift_s``.
    params : NoteParams
        Thresholds.
    """

    def __init__(
        self,
        *,
        n_bins: int,
        hop_samples: int,
        hop_s: float,
        time_shift_s: float,
        params: NoteParams,
    ) -> None:
        self.p = params
        self._hop_samples = hop_samples
        self.hop_s = hop_s
        self.shift_s = time_shift_s
        self._rearm_n = max(1, round(params.rearm_s / hop_s))
        self._ring: F32 = np.zeros((RING_HOPS, n_bins), dtype=np.float32)
        self._frame = 0  # absolute index of the next hop
        # onsets waiting for their decision hop: (hop, onset_s, velocity)
        self._pending: list[tuple[int, float, float]] = []
        self._last_struck: I64 = np.full(N_KEYS, -(10**9), dtype=np.int64)
        # sounding key -> [note id, onset_s, peak level, hops ending]
        self._open: dict[int, list[float]] = {}
        self._next_id = 1

    def state(self) -> dict[str, npt.NDArray[np.generic]]:
        """The whole state as arrays (``ring`` float32 spectra, the rest int64/float64)."""
        keys = sorted(self._open)
        return {
            "ring": self._ring.copy(),
            "counts": np.array([self._frame, self._next_id], dtype=np.int64),
            "pending": np.array(self._pending, dtype=np.float64).reshape(-1, 3),
            "last_struck": self._last_struck.copy(),
            "open_keys": np.array(keys, dtype=np.int64),
            "open": np.array([self._open[k] for k in keys], dtype=np.float64).reshape(-1, 4),
        }

    def restore(self, state: dict[str, npt.NDArray[np.generic]]) -> None:
        ring = np.asarray(state["ring"], dtype=np.float32)
        if ring.shape != self._ring.shape:
            raise ValueError("note decoder state does not match this geometry")
        self._ring = ring.copy()
        self._frame, self._next_id = (int(v) for v in state["counts"])
        self._pending = [(int(h), float(t), float(v)) for h, t, v in state["pending"]]
        self._last_struck = np.asarray(state["last_struck"], dtype=np.int64).copy()
        self._open = {
            int(k): [float(x) for x in row]
            for k, row in zip(state["open_keys"], state["open"], strict=True)
        }

    def _end_s(self, frame: int) -> float:
        return (frame + 1) * self.hop_s - self.shift_s

    def _due(self, mag: F32, frames: F32) -> tuple[list[tuple[int, float, float]], F32, F32]:
        """Pending onsets decided in this block, their long-frame magnitudes
        (n, len(REL_HOPS), bins) and short frames (n, len(SHORT_REL_HOPS), SHORT_SAMPLES)."""
        if not self._pending:
            return [], _EMPTY, _EMPTY
        last = self._frame + int(mag.shape[0]) - 1
        due = [p for p in self._pending if p[0] + DECISION_HOPS <= last]
        if not due:
            return [], _EMPTY, _EMPTY
        self._pending = [p for p in self._pending if p[0] + DECISION_HOPS > last]
        hist = np.concatenate((self._ring, mag), axis=0)  # row i = hop first - RING_HOPS + i
        base = self._frame - RING_HOPS
        rows = np.asarray([[h + r - base for r in REL_HOPS] for h, _, _ in due])
        # the short frame of hop h + r ends (DECISION_HOPS - r) hops before the decision hop's
        # long frame does, inside it
        size = int(frames.shape[1])
        ends = [size - self._hop_samples * (DECISION_HOPS - r) for r in SHORT_REL_HOPS]
        tails = np.stack(
            [
                np.stack(
                    [frames[h + DECISION_HOPS - self._frame, e - SHORT_SAMPLES : e] for e in ends]
                )
                for h, _, _ in due
            ]
        )
        return due, hist[np.maximum(rows, 0)], tails

    def _advance(self, mag: F32) -> None:
        n = int(mag.shape[0])
        if n >= RING_HOPS:
            self._ring = mag[-RING_HOPS:].copy()
        elif n:
            self._ring = np.concatenate((self._ring[n:], mag), axis=0)
        self._frame += n

    def _apply(
        self,
        due: list[tuple[int, float, float]],
        prob: F32,
        levels: F32,
        out: NoteEvents,
    ) -> None:
        """Walk this block's hops in order: notes start at their decision hop, and from the
        next hop on their level is checked (``levels``: :func:`key_levels` of this block)."""
        n = int(levels.shape[0])
        by_hop: dict[int, list[int]] = {}  # block hop -> the onsets decided at its end
        for j, (hop, _, _) in enumerate(due):
            by_hop.setdefault(hop + DECISION_HOPS - self._frame, []).append(j)
        ons, offs, retracted = out
        done = 0
        for i in sorted(h for h in by_hop if 0 <= h < n):
            self._levels(levels, done, i + 1, offs)  # the hop's checks come before its strikes
            for j in by_hop[i]:
                self._strike(due[j], prob[j], ons, offs)
                top = float(prob[j].max())
                if top < self.p.onset_confirm_threshold:
                    retracted.append(OnsetRetraction(due[j][1], top))
            done = i + 1
        self._levels(levels, done, n, offs)

    def _strike(
        self, onset: tuple[int, float, float], q: F32, ons: list[NoteOn], offs: list[NoteOff]
    ) -> None:
        hop, onset_s, vel = onset
        decided = hop + DECISION_HOPS
        hit = (q >= self.p.key_threshold) & (hop - self._last_struck >= self._rearm_n)
        for k in np.flatnonzero(hit).tolist():
            if k in self._open:  # struck again: the previous note ends at this onset
                self._end(k, hop, offs)
            nid = self._next_id
            self._next_id += 1
            ons.append(
                NoteOn(nid, k + LOWEST_KEY_MIDI, onset_s, self._end_s(decided), vel, float(q[k]))
            )
            self._last_struck[k] = hop
            self._open[k] = [float(nid), onset_s, -1.0, 0.0]

    def _end(self, k: int, frame: int, offs: list[NoteOff]) -> None:
        nid, onset_s, _, _ = self._open.pop(k)
        offs.append(NoteOff(int(nid), k + LOWEST_KEY_MIDI, onset_s, self._end_s(frame)))

    def _levels(self, levels: F32, i0: int, i1: int, offs: list[NoteOff]) -> None:
        """Level checks of the sounding notes over hops ``i0 .. i1 - 1`` of this block
        (``levels``: the block's :func:`key_levels`); their ends in (hop, key) order."""
        if not self._open or i1 <= i0:
            return
        drop, floor, need = self.p.off_drop, self.p.off_floor, self.p.off_hops
        keys = sorted(self._open)
        ends = []
        # per key, its levels over these hops as Python floats (only the sounding keys)
        for k, col in zip(keys, levels[i0:i1, keys].T.tolist(), strict=True):
            note = self._open[k]
            peak, run = note[2], note[3]
            for i, v in enumerate(col):
                if v > peak:
                    peak = v
                run = run + 1 if v < peak - drop or v < floor else 0.0
                if run >= need:
                    ends.append((self._frame + i0 + i, k))
                    break
            note[2], note[3] = peak, run
        for t, k in sorted(ends):
            self._end(k, t, offs)


def key_levels(mag: F32, *, sample_rate_hz: int) -> F32:
    """Each key's level per hop: its loudest first three harmonics.

    Parameters
    ----------
    mag : ndarray, shape (n_hops, n_bins), float32
        Long-frame magnitudes (audio in ``[-1, 1]``).
    sample_rate_hz : int
        Analysis rate, Hz.

    Returns
    -------
    ndarray, shape (n_hops, 88), float32
        ``log10(1 + 1000 m)``, ``m`` the largest magnitude in the FFT bins nearest to the key's
        fundamental, second and third harmonic (``>= 0``).
    """
    bins = _level_bins(int(mag.shape[1]), sample_rate_hz).ravel()  # key k: bins 3k .. 3k + 2
    g = np.take(mag, bins, axis=1).reshape(int(mag.shape[0]), N_KEYS, 3)
    # two pairwise maxima, not .max(axis=2) over a length-3 axis (the same values, ~1.7x
    # faster for the few hops of a small batch)
    m = np.maximum(np.maximum(g[:, :, 0], g[:, :, 1]), g[:, :, 2])
    return np.asarray(log_compress(m, mul=LOG_MUL), dtype=np.float32)


@lru_cache(maxsize=4)
def _level_bins(n_bins: int, sample_rate_hz: int) -> I64:
    """(88, 3) FFT bins of each key's first three harmonics (clipped to Nyquist)."""
    bin_hz = sample_rate_hz / (2 * (n_bins - 1))
    f0 = 440.0 * 2.0 ** ((np.arange(N_KEYS) + LOWEST_KEY_MIDI - 69) / 12)
    b = np.rint(np.outer(f0, (1.0, 2.0, 3.0)) / bin_hz).astype(np.int64)
    out = np.minimum(b, n_bins - 1)
    out.flags.writeable = False
    return out


def decide_notes_many(
    decoders: Sequence[OnsetNoteDecoder],
    mags: Sequence[F32],
    frames: Sequence[F32],
    onsets: Sequence[tuple[I64, F32 | F64, F32]],
    *,
    net: OnsetNoteNet,
    gm: GridMap,
    gm_short: GridMap,
    levels: Sequence[F32],
) -> list[NoteEvents]:
    """Fast-note events of the next hops of several streams, one classifier call for all.

    Parameters
    ----------
    decoders : sequence of OnsetNoteDecoder
        One per stream.
    mags : sequence of ndarray, shape (n_i, n_bins), float32
        Each stream's long-frame magnitudes of its next hops.
    frames : sequence of ndarray, shape (n_i, frame_samples), float32
        The same hops' time-domain frames.
    onsets : sequence of (hops, onset_s, velocity)
        Each stream's onsets fired in those hops: absolute hop indices (int64), reported onset
        times (s) and velocity estimates in ``[0, 1]`` (float32).
    net : OnsetNoteNet
        The classifier.
    gm, gm_short : GridMap
        Pitch-grid maps of the long and the short FFT length.
    levels : sequence of ndarray, shape (n_i, 88), float32
        Each stream's :func:`key_levels` of ``mags`` (one call over the whole batch is
        cheaper than one per stream).

    Returns
    -------
    list of (note_ons, note_offs, onset_retractions)
        Per stream, in time order within each kind.
    """
    dues, longs, shorts = [], [], []
    for d, mag, fr, (hops, times, vels) in zip(decoders, mags, frames, onsets, strict=True):
        if hops.shape[0]:
            d._pending += [
                (int(h), float(t), float(v))
                for h, t, v in zip(hops.tolist(), times.tolist(), vels.tolist(), strict=True)
            ]
        due, lm, tails = d._due(mag, fr)
        dues.append(due)
        if due:
            longs.append(lm)
            shorts.append(tails)
    n_due = [len(x) for x in dues]
    prob = np.zeros((0, N_KEYS), dtype=np.float32)
    if longs:
        lm = np.concatenate(longs, axis=0)
        tails = np.concatenate(shorts, axis=0)
        n = lm.shape[0]
        g_long = pitch_spectrum(lm.reshape(n * lm.shape[1], -1), gm).reshape(n, lm.shape[1], -1)
        sm = short_magnitudes(tails.reshape(n * tails.shape[1], -1))
        g_short = pitch_spectrum(sm, gm_short).reshape(n, tails.shape[1], -1)
        prob = net.predict(np.concatenate((g_long, g_short), axis=1))
    out = []
    at = 0
    for d, mag, due, n, lv in zip(decoders, mags, dues, n_due, levels, strict=True):
        ev: NoteEvents = ([], [], [])
        if due or d._open:
            d._apply(due, prob[at : at + n], lv, ev)
        at += n
        d._advance(mag)
        out.append(ev)
    return out
