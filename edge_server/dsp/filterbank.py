"""Logarithmically spaced triangular filterbanks."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


def log_filterbank(
    *,
    n_fft: int,
    sample_rate_hz: float,
    bands_per_octave: int = 12,
    f_min_hz: float = 27.5,
    f_max_hz: float = 10_000.0,
) -> F32:
    """Triangular filters centred on a logarithmic frequency grid.

    Filters whose centre falls on a bin already taken are merged (as in madmom), so low bands
    that are narrower than an FFT bin do not repeat. Each filter has unit height.

    Parameters
    ----------
    n_fft : int
        FFT length; the spectrum has ``n_fft // 2 + 1`` bins.
    sample_rate_hz : float
        Sample rate, Hz.
    bands_per_octave : int
        Grid density (12 = semitones).
    f_min_hz, f_max_hz : float
        Lowest and highest centre frequencies, Hz; ``f_max_hz`` is clipped to Nyquist.

    Returns
    -------
    ndarray, shape (n_fft // 2 + 1, n_bands), float32
        Filter matrix, values in ``[0, 1]``; ``spectrum @ fb`` gives band energies. Read-only
        and shared: one matrix per parameter set for the whole process (~390 kB at 1024/24).
    """
    return _cached_filterbank(n_fft, float(sample_rate_hz), bands_per_octave, f_min_hz, f_max_hz)


@lru_cache(maxsize=16)
def _cached_filterbank(
    n_fft: int, sample_rate_hz: float, bands_per_octave: int, f_min_hz: float, f_max_hz: float
) -> F32:
    n_bins = n_fft // 2 + 1
    bin_hz = sample_rate_hz / n_fft
    f_max_hz = min(f_max_hz, sample_rate_hz / 2 - bin_hz)
    n_steps = int(np.floor(bands_per_octave * np.log2(f_max_hz / f_min_hz)))
    freqs = f_min_hz * 2.0 ** (np.arange(-1, n_steps + 2) / bands_per_octave)
    bins = np.unique(np.round(freqs / bin_hz).astype(np.int64))
    bins = bins[(bins >= 0) & (bins < n_bins)]
    fb = np.zeros((n_bins, max(len(bins) - 2, 0)), dtype=np.float32)
    for i in range(len(bins) - 2):
        lo, mid, hi = bins[i], bins[i + 1], bins[i + 2]
        if mid > lo:
            fb[lo : mid + 1, i] = np.linspace(0.0, 1.0, mid - lo + 1)
        if hi > mid:
            fb[mid : hi + 1, i] = np.maximum(
                fb[mid : hi + 1, i], np.linspace(1.0, 0.0, hi - mid + 1)
            )
        fb[mid, i] = 1.0
    fb.flags.writeable = False
    return fb


def log_compress(x: F32, *, mul: float) -> F32:
    """``log10(1 + mul * x)`` in place.

    Parameters
    ----------
    x : ndarray, any shape, float32
        Linear energies or magnitudes, ``>= 0`` (overwritten).
    mul : float
        Compression factor, ``> 0``.

    Returns
    -------
    ndarray, same shape, float32
        ``x`` itself, compressed, ``>= 0``.
    """
    # log(1 + y), not log1p(y): numpy's float32 log is vectorised and log1p is not (~5x
    # slower); the rounding of 1 + y costs at most ~6e-8 absolute, far below what the
    # features resolve
    np.multiply(x, mul, out=x)
    np.add(x, 1.0, out=x)
    np.log(x, out=x)
    np.multiply(x, np.float32(1 / np.log(10)), out=x)
    return x
