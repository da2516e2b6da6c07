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
under ``off_floor``, for ``off_hops`` hops (:mod:`.noteends`: the sounding notes of all
streams in a batch are checked together, in a fixed number of array operations).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from .filterbank import log_compress
from .noteends import level_ends
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
from .readonly import EMPTY_I64, frozen

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
#: spectra kept per stream: enough for an onset fired in the last hop of the previous block
RING_HOPS = DECISION_HOPS - min(REL_HOPS) + 1


@dataclass(frozen=True, kw_only=True)
class NoteParams:
    """Fast-tier decision settings (chosen on held-out self-rendered clips).

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
    """

    key_threshold: float = 0.4
    rearm_s: float = 0.06
    off_drop: float = 1.0
    off_floor: float = 0.25
    off_hops: int = 3


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


_EMPTY = np.zeros((0, 0, 0), dtype=np.float32)
_NO_NOTES = frozen(np.zeros((0, 4), dtype=np.float64))


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
        # sounding notes, by ascending key: keys (m,) and rows [note id, onset_s, peak level,
        # hops ending] (m, 4); replaced, never written in place (they may be views of a batch)
        self._open_keys: I64 = EMPTY_I64
        self._open: F64 = _NO_NOTES
        self._next_id = 1

    def state(self) -> dict[str, npt.NDArray[np.generic]]:
        """The whole state as arrays (``ring`` float32 spectra, the rest int64/float64)."""
        return {
            "ring": self._ring.copy(),
            "counts": np.array([self._frame, self._next_id], dtype=np.int64),
            "pending": np.array(self._pending, dtype=np.float64).reshape(-1, 3),
            "last_struck": self._last_struck.copy(),
            "open_keys": self._open_keys.copy(),
            "open": self._open.copy(),
        }

    def restore(self, state: dict[str, npt.NDArray[np.generic]]) -> None:
        ring = np.asarray(state["ring"], dtype=np.float32)
        keys = np.asarray(state["open_keys"], dtype=np.int64).reshape(-1)
        notes = np.asarray(state["open"], dtype=np.float64).reshape(-1, 4)
        if ring.shape != self._ring.shape or keys.shape[0] != notes.shape[0]:
            raise ValueError("note decoder state does not match this geometry")
        order = np.argsort(keys, kind="stable")
        self._ring = ring.copy()
        self._frame, self._next_id = (int(v) for v in state["counts"])
        self._pending = [(int(h), float(t), float(v)) for h, t, v in state["pending"]]
        self._last_struck = np.asarray(state["last_struck"], dtype=np.int64).copy()
        self._open_keys, self._open = keys[order], notes[order]

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

    def _strike(
        self, onset: tuple[int, float, float], q: F32, ons: list[NoteOn], offs: list[NoteOff]
    ) -> None:
        """Report the keys the classifier gave ``q`` for this onset (at its decision hop)."""
        hop, onset_s, vel = onset
        hit = (q >= self.p.key_threshold) & (hop - self._last_struck >= self._rearm_n)
        keys = np.flatnonzero(hit).tolist()
        if not keys:
            return
        self._last_struck[keys] = hop
        struck = set(keys)
        kept = []  # (key, row) of the notes still sounding, then the new ones; by key below
        end_s = self._end_s(hop)
        for k, row in zip(self._open_keys.tolist(), self._open.tolist(), strict=True):
            if k in struck:  # struck again: the previous note ends at this onset
                offs.append(NoteOff(int(row[0]), k + LOWEST_KEY_MIDI, row[1], end_s))
            else:
                kept.append((k, row))
        detected_s = self._end_s(hop + DECISION_HOPS)
        for k in keys:
            nid = self._next_id
            self._next_id += 1
            ons.append(NoteOn(nid, k + LOWEST_KEY_MIDI, onset_s, detected_s, vel, float(q[k])))
            kept.append((k, [float(nid), onset_s, -1.0, 0.0]))
        kept.sort(key=lambda kr: kr[0])
        self._open_keys = np.array([k for k, _ in kept], dtype=np.int64)
        self._open = np.array([r for _, r in kept], dtype=np.float64).reshape(-1, 4)


def _level_pass(
    jobs: Sequence[tuple[OnsetNoteDecoder, int, int, int, list[NoteOff]]],
    levels: F32,
    p: NoteParams,
) -> None:
    """Level checks (:func:`.noteends.level_ends`) of consecutive hops for every sounding note
    of several streams at once.

    ``jobs``: (decoder, its first row in ``levels``, number of hops, absolute index of the
    first hop, the list its note-offs go to).
    """
    jobs = [j for j in jobs if j[2] > 0 and j[0]._open_keys.shape[0]]
    if not jobs:
        return
    keys = np.concatenate([j[0]._open_keys for j in jobs])
    notes = np.concatenate([j[0]._open for j in jobs])  # a new array: written below
    m = [int(j[0]._open_keys.shape[0]) for j in jobs]
    ended_at, notes[:, 2], notes[:, 3] = level_ends(
        levels,
        rows=np.repeat(np.asarray([j[1] for j in jobs]), m),
        n_hops=np.repeat(np.asarray([j[2] for j in jobs]), m),
        keys=keys,
        peak=notes[:, 2],
        count=notes[:, 3],
        off_drop=p.off_drop,
        off_floor=p.off_floor,
        off_hops=p.off_hops,
    )
    alive = ended_at < 0
    starts = np.cumsum([0, *m[:-1]])
    n_gone = np.add.reduceat(~alive, starts).tolist()
    for (d, _, _, t0, offs), a, k, g in zip(jobs, starts.tolist(), m, n_gone, strict=True):
        # views of this batch's small arrays (40 bytes per note) until the next change
        if not g:
            d._open_keys, d._open = keys[a : a + k], notes[a : a + k]
            continue
        live = alive[a : a + k]
        gone = a + np.flatnonzero(~live)
        gone = gone[np.argsort(ended_at[gone], kind="stable")]  # hop order, then key order
        for j in gone.tolist():
            offs.append(
                NoteOff(
                    int(notes[j, 0]),
                    int(keys[j]) + LOWEST_KEY_MIDI,
                    float(notes[j, 1]),
                    d._end_s(t0 + int(ended_at[j])),
                )
            )
        d._open_keys, d._open = keys[a : a + k][live], notes[a : a + k][live]


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
    bins = _level_bins(int(mag.shape[1]), sample_rate_hz)
    return np.asarray(log_compress(mag[:, bins].max(axis=2), mul=LOG_MUL), dtype=np.float32)


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
    levels: F32,
) -> list[tuple[list[NoteOn], list[NoteOff]]]:
    """Fast-note events of the next hops of several streams, one classifier call for all.

    Within each stream the hops are walked in order: the sounding notes' levels are checked
    at every hop, and at an onset's decision hop, after that hop's check, its keys strike.
    The level checks of all streams run together (:func:`_level_pass`), split at the
    decision hops of the streams that have any.

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
    levels : ndarray, shape (sum n_i, 88), float32
        :func:`key_levels` of all streams' ``mags`` stacked in stream order (one call over
        the whole batch).

    Returns
    -------
    list of (note_ons, note_offs)
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
    flat_due = [x for due in dues for x in due]
    prob = np.zeros((0, N_KEYS), dtype=np.float32)
    if longs:
        lm = np.concatenate(longs, axis=0)
        tails = np.concatenate(shorts, axis=0)
        n = lm.shape[0]
        g_long = pitch_spectrum(lm.reshape(n * lm.shape[1], -1), gm).reshape(n, lm.shape[1], -1)
        sm = short_magnitudes(tails.reshape(n * tails.shape[1], -1))
        g_short = pitch_spectrum(sm, gm_short).reshape(n, tails.shape[1], -1)
        prob = net.predict(np.concatenate((g_long, g_short), axis=1))
    p = decoders[0].p
    ons_all: list[list[NoteOn]] = [[] for _ in decoders]
    offs_all: list[list[NoteOff]] = [[] for _ in decoders]
    # per stream with onsets due: its decision hops (block-relative), each with its onsets
    cuts: dict[int, list[tuple[int, list[int]]]] = {}
    jobs = []
    rows = []  # each stream's first row in ``levels``
    row = at = 0
    for s, (d, mag, due) in enumerate(zip(decoders, mags, dues, strict=True)):
        n = int(mag.shape[0])
        rows.append(row)
        if due:
            by_hop: dict[int, list[int]] = {}
            for j, (hop, _, _) in enumerate(due):
                by_hop.setdefault(hop + DECISION_HOPS - d._frame, []).append(at + j)
            cuts[s] = sorted(by_hop.items())
            n = cuts[s][0][0] + 1
        jobs.append((d, row, n, d._frame, offs_all[s]))
        row += int(mag.shape[0])
        at += len(due)
    _level_pass(jobs, levels, p)
    r = 0
    while cuts:  # strike at the r-th decision hop, then check levels up to the next one
        jobs = []
        for s, c in cuts.items():
            d, (hop, which) = decoders[s], c[r]
            for j in which:
                d._strike(flat_due[j], prob[j], ons_all[s], offs_all[s])
            end = c[r + 1][0] + 1 if r + 1 < len(c) else int(mags[s].shape[0])
            jobs.append((d, rows[s] + hop + 1, end - hop - 1, d._frame + hop + 1, offs_all[s]))
        _level_pass(jobs, levels, p)
        r += 1
        cuts = {s: c for s, c in cuts.items() if r < len(c)}
    for d, mag in zip(decoders, mags, strict=True):
        d._advance(mag)
    return list(zip(ons_all, offs_all, strict=True))
