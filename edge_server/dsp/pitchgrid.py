"""A log-frequency spectrum on a grid of thirds of a semitone, made from FFT magnitudes.

The fast note classifier (:mod:`.onsetnotes`) reads each key's harmonics on this grid: bin
``j`` is centred on MIDI pitch ``GRID_MIDI_LO + j / BINS_PER_SEMITONE``, so harmonic ``h``
of the key in bin ``j`` sits ``round(36 * log2(h))`` bins higher whatever the key (harmonic
stacking, as in Basic Pitch). Each grid bin is a normalised triangular average of the FFT
bins around its centre, at least one FFT bin wide: below ~1 kHz, where grid bins are
narrower than FFT bins, neighbouring grid bins interpolate the same FFT bins.

The map is sparse (each grid bin reads at most a few dozen FFT bins) and applied with one
gather and one ``reduceat``, only for the frames the classifier needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from .filterbank import log_compress

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

BINS_PER_SEMITONE = 3
#: MIDI pitch of grid bin 0 (one semitone under the lowest piano key, A0 = 21)
GRID_MIDI_LO = 20
#: grid bins: MIDI 20 .. 131 2/3 (8.2 kHz), covering the 8th harmonic of C7
N_GRID = 336
LOG_MUL = 1000.0


@dataclass(frozen=True)
class GridMap:
    """Sparse FFT-bin -> grid-bin weights (CSR-like, row = grid bin).

    Attributes
    ----------
    index : ndarray, shape (nnz,), int64
        FFT bin of each weight, grouped by grid bin.
    weight : ndarray, shape (nnz,), float32
        Weights, each grid bin's summing to 1.
    starts : ndarray, shape (N_GRID,), int64
        Offset of each grid bin's first weight in ``index``.
    """

    index: I64
    weight: F32
    starts: I64


@lru_cache(maxsize=4)
def grid_map(*, n_fft: int, sample_rate_hz: int) -> GridMap:
    """The sparse map from ``n_fft // 2 + 1`` magnitude bins to the pitch grid (cached)."""
    bin_hz = sample_rate_hz / n_fft
    n_bins = n_fft // 2 + 1
    midi = GRID_MIDI_LO + np.arange(N_GRID) / BINS_PER_SEMITONE
    centre_hz = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
    step = 2.0 ** (1.0 / (12 * BINS_PER_SEMITONE))
    index: list[I64] = []
    weight: list[npt.NDArray[np.float64]] = []
    starts: list[int] = []
    total = 0
    for c in centre_hz:
        half = max(c * (step - 1.0), bin_hz)
        lo = max(int(np.floor((c - half) / bin_hz)), 0)
        hi = min(int(np.ceil((c + half) / bin_hz)), n_bins - 1)
        k = np.arange(lo, hi + 1)
        w = np.maximum(1.0 - np.abs(k * bin_hz - c) / half, 0.0)
        if w.sum() <= 0:  # centre beyond Nyquist: read the top bin
            k, w = np.array([n_bins - 1]), np.array([1.0])
        keep = w > 0
        starts.append(total)
        total += int(keep.sum())
        index.append(k[keep])
        weight.append(w[keep] / w[keep].sum())
    gm = GridMap(
        index=np.concatenate(index).astype(np.int64),
        weight=np.concatenate(weight).astype(np.float32),
        starts=np.asarray(starts, dtype=np.int64),
    )
    for a in (gm.index, gm.weight, gm.starts):
        a.flags.writeable = False
    return gm


def pitch_spectrum(mag: F32, gm: GridMap) -> F32:
    """Log-compressed grid spectrum of magnitude frames.

    Parameters
    ----------
    mag : ndarray, shape (n_frames, n_fft // 2 + 1), float32
        Linear magnitudes of Hann-windowed frames of audio in ``[-1, 1]``, ``>= 0``.
    gm : GridMap
        From :func:`grid_map` for the same FFT length and rate.

    Returns
    -------
    ndarray, shape (n_frames, N_GRID), float32
        ``log10(1 + LOG_MUL * average magnitude)`` per grid bin, ``>= 0`` (about 0-5.4 for
        full-scale audio and a 1024-sample frame).
    """
    g = mag[:, gm.index] * gm.weight
    out = np.add.reduceat(g, gm.starts, axis=1)
    return np.asarray(log_compress(out, mul=LOG_MUL), dtype=np.float32)


def key_bin(midi_pitch: int) -> int:
    """Grid bin of a MIDI pitch's fundamental."""
    return (midi_pitch - GRID_MIDI_LO) * BINS_PER_SEMITONE


def harmonic_shifts(harmonics: tuple[float, ...]) -> tuple[int, ...]:
    """Grid-bin offsets of the given multiples of a fundamental."""
    return tuple(int(round(12 * BINS_PER_SEMITONE * np.log2(h))) for h in harmonics)
