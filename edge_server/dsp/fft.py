"""Pre-planned batched real FFTs (pyfftw) with buffers allocated once per thread."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pyfftw

F32 = npt.NDArray[np.float32]
C64 = npt.NDArray[np.complex64]

# FFTW_ESTIMATE: plans are chosen by heuristics, not timing, so every process picks the same
# algorithm and results are bit-identical between the server and the in-process path.
_FLAGS = ("FFTW_ESTIMATE", "FFTW_DESTROY_INPUT")


class FramesRFFT:
    """Magnitude spectra of up to ``max_frames`` windowed frames in one FFTW call.

    Owned by one thread (see :func:`frames_rfft`). Buffers: aligned float32 input
    ``(max_frames, frame_samples)``, complex64 output and float32 magnitudes
    ``(max_frames, frame_samples // 2 + 1)``. One plan per batch size, made on first use.

    Parameters
    ----------
    frame_samples : int
        FFT length, even, ``>= 16``.
    max_frames : int
        Largest batch, ``>= 1``.
    """

    def __init__(self, *, frame_samples: int, max_frames: int) -> None:
        if frame_samples < 16 or frame_samples % 2:
            raise ValueError("frame_samples must be even and >= 16")
        self.frame_samples = frame_samples
        self.n_bins = frame_samples // 2 + 1
        self.max_frames = max_frames
        self._in: F32 = pyfftw.empty_aligned((max_frames, frame_samples), dtype="float32")
        self._out: C64 = pyfftw.empty_aligned((max_frames, self.n_bins), dtype="complex64")
        self._mag: F32 = np.empty((max_frames, self.n_bins), dtype=np.float32)
        self._plans: dict[int, Any] = {}

    def _plan(self, n: int) -> Any:
        plan = self._plans.get(n)
        if plan is None:
            plan = pyfftw.FFTW(
                self._in[:n], self._out[:n], axes=(1,), direction="FFTW_FORWARD", flags=_FLAGS
            )
            self._plans[n] = plan
        return plan

    def magnitudes(self, frames: F32, window: F32) -> F32:
        """Return ``|rfft(frames * window)|``.

        Parameters
        ----------
        frames : ndarray, shape (n_frames, frame_samples), float32
            Time-domain frames, ``n_frames <= max_frames``.
        window : ndarray, shape (frame_samples,), float32
            Analysis window.

        Returns
        -------
        ndarray, shape (n_frames, frame_samples // 2 + 1), float32
            Linear magnitudes, ``>= 0``. A view into a reused buffer: valid until the next call
            on this object; copy it to keep it.
        """
        n = frames.shape[0]
        if n > self.max_frames:
            raise ValueError(f"{n} frames exceed max_frames={self.max_frames}")
        np.multiply(frames, window, out=self._in[:n])
        self._plan(n).execute()
        np.abs(self._out[:n], out=self._mag[:n])
        return self._mag[:n]


_local = threading.local()


def frames_rfft(*, frame_samples: int, max_frames: int) -> FramesRFFT:
    """The calling thread's :class:`FramesRFFT` for this frame length (created once)."""
    cache: dict[tuple[int, int], FramesRFFT] | None = getattr(_local, "cache", None)
    if cache is None:
        cache = {}
        _local.cache = cache
    key = (frame_samples, max_frames)
    obj = cache.get(key)
    if obj is None:
        obj = FramesRFFT(frame_samples=frame_samples, max_frames=max_frames)
        cache[key] = obj
    return obj


def rfft_magnitudes(frames: F32, window: F32, *, max_frames: int) -> F32:
    """``|rfft(frames * window)|`` of any number of frames, in FFTW calls of up to
    ``max_frames`` frames (the calling thread's :func:`frames_rfft`).

    Parameters
    ----------
    frames : ndarray, shape (n_frames, frame_samples), float32
        Time-domain frames.
    window : ndarray, shape (frame_samples,), float32
        Analysis window.
    max_frames : int
        Frames per FFTW call, ``>= 1``.

    Returns
    -------
    ndarray, shape (n_frames, frame_samples // 2 + 1), float32
        Linear magnitudes, ``>= 0``. Up to ``max_frames`` frames: a view into the reused
        buffer (valid until the next call for this frame length); more: a new array.
    """
    n, size = int(frames.shape[0]), int(frames.shape[1])
    fft = frames_rfft(frame_samples=size, max_frames=max_frames)
    if n <= max_frames:
        return fft.magnitudes(frames, window)
    return np.concatenate(
        [fft.magnitudes(frames[i : i + max_frames], window).copy() for i in range(0, n, max_frames)]
    )


@lru_cache(maxsize=8)
def hann_window(n: int) -> F32:
    """Periodic Hann window of ``n`` samples, float32, shared read-only."""
    w = np.hanning(n + 1)[:-1].astype(np.float32)
    w.flags.writeable = False
    return w
