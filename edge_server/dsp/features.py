"""Per-hop audio features."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

RMS_FLOOR_DB = -120.0


def rms_db(frames: F32) -> F32:
    """Root-mean-square level of each frame.

    Parameters
    ----------
    frames : ndarray, shape (n_frames, frame_samples), float32
        Time-domain frames in ``[-1, 1]``.

    Returns
    -------
    ndarray, shape (n_frames,), float32
        Level in dB full scale, in ``[-120, 0]`` for in-range input (a full-scale square
        wave is 0 dB, a full-scale sine -3.01 dB).
    """
    power = np.einsum("ij,ij->i", frames, frames) / np.float32(frames.shape[1])
    db = 10.0 * np.log10(np.maximum(power, 1e-12))
    return np.asarray(np.maximum(db, RMS_FLOOR_DB), dtype=np.float32)


def spectral_centroid_hz(mag: F32, bin_hz: F32) -> F32:
    """Magnitude-weighted mean frequency of each frame.

    Parameters
    ----------
    mag : ndarray, shape (n_frames, n_bins), float32
        Linear magnitudes, ``>= 0``.
    bin_hz : ndarray, shape (n_bins,), float32
        Centre frequency of each bin, Hz.

    Returns
    -------
    ndarray, shape (n_frames,), float32
        Centroid in Hz, in ``[0, sample_rate / 2]``; 0 for silent frames.
    """
    total = mag.sum(axis=1)
    weighted = mag @ bin_hz
    out = np.zeros_like(total)
    np.divide(weighted, total, out=out, where=total > 1e-9)
    return np.asarray(out, dtype=np.float32)
