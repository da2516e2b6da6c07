"""Causal SuperFlux onset detection function and past-only adaptive peak picking.

The ODF is always computed (it is the ``spectral_flux`` feature); its peak picker is the
non-learned onset method (``AnalyzerConfig.onset_method = "superflux"``), kept for sounds the
note network was not trained on. The default onsets come from the network
(:mod:`.netonsets`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .readonly import EMPTY_F32, EMPTY_I64

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, kw_only=True)
class OnsetParams:
    """Onset detector settings. Times are converted to frames at the hop rate.

    The input bands are the note network's long-frame bands (``notenet.InputSpec``: 36 bands
    per octave, ``log10(1 + 1000 * energy)``).

    Attributes
    ----------
    max_filter_bands : int
        SuperFlux vibrato suppression: width of the maximum filter over bands (odd).
    lag_frames : int
        SuperFlux: compare each frame with the max-filtered frame this many hops back.
    ref_frames : int
        The reference is the maximum over this many frames, from ``lag_frames`` back, so a
        dip in one past frame (two partials interfering in a bin) does not look like a rise.
    band_rise_cap : float
        Largest rise one band can add to the ODF (log10 units; 1.0 = 20 dB). Onsets are
        broadband while beating partials or noise move a few bands, so capping each band makes
        the ODF count how many bands rise rather than how far one band swings.
    threshold : float
        Fixed part of the adaptive threshold (ODF units).
    avg_window_s : float
        Moving-average window over the past ODF values.
    max_window_s : float
        An onset must be the maximum of the ODF over this past window.
    combine_s : float
        Minimum time between two reported onsets.
    time_offset_s : float
        Subtracted from the frame end to give the onset time: where, before the end of the
        frame, the flux of an onset typically peaks (measured on synthetic tones).
    """

    max_filter_bands: int = 5
    lag_frames: int = 2
    ref_frames: int = 2
    band_rise_cap: float = 1.0
    threshold: float = 2.7
    avg_window_s: float = 0.10
    max_window_s: float = 0.03
    combine_s: float = 0.03
    time_offset_s: float = 0.010


@dataclass(frozen=True)
class OnsetBatch:
    """Result of one :meth:`OnsetDetector.process` call.

    Attributes
    ----------
    odf : ndarray, shape (n_frames,), float32
        Onset detection function (SuperFlux, ``>= 0``) per frame.
    onset_frames : ndarray, shape (n_onsets,), int64
        Absolute indices of the frames that fired (``0`` = first frame of the stream).
    strengths : ndarray, shape (n_onsets,), float32
        ODF minus the adaptive threshold at each onset, ``>= 0``.
    """

    odf: F32
    onset_frames: npt.NDArray[np.int64]
    strengths: F32


class OnsetDetector:
    """Streaming SuperFlux onset detector that only looks at past frames.

    Parameters
    ----------
    sample_rate_hz : int
        Analysis sample rate, Hz.
    hop_samples : int
        Hop (samples).
    n_bands : int
        Width of the band rows passed to :meth:`process`.
    params : OnsetParams
        Settings.
    """

    def __init__(
        self, *, sample_rate_hz: int, hop_samples: int, n_bands: int, params: OnsetParams
    ) -> None:
        self.params = params
        fps = sample_rate_hz / hop_samples
        self._n_bands = n_bands
        self._lag = max(1, params.lag_frames)
        self._ref_n = max(1, params.ref_frames)
        self._depth = self._lag + self._ref_n - 1
        self._hist: F32 = np.zeros((self._depth, n_bands), dtype=np.float32)
        self._avg_n = max(1, round(params.avg_window_s * fps))
        self._max_n = max(1, round(params.max_window_s * fps))
        self._combine_n = max(1, round(params.combine_s * fps))
        ring_n = max(self._avg_n, self._max_n)
        self._odf_ring: F32 = np.zeros(ring_n, dtype=np.float32)
        self._ring_sum = 0.0
        self._frame = 0
        self._last_onset = -(10**9)

    def state(self) -> dict[str, npt.NDArray[np.generic]]:
        """Past-frame state of the detector.

        Returns
        -------
        dict
            ``hist`` : ndarray, shape (lag + ref - 1, n_bands), float32, log band energies of
            the last frames; ``odf`` : ndarray, shape (ring_n,), float32, recent ODF values
            (ring order); ``sum`` : ndarray, shape (1,), float64, their moving sum;
            ``counts`` : ndarray, shape (2,), int64, frame index and last onset frame.
        """
        return {
            "hist": self._hist.copy(),
            "odf": self._odf_ring.copy(),
            "sum": np.array([self._ring_sum], dtype=np.float64),
            "counts": np.array([self._frame, self._last_onset], dtype=np.int64),
        }

    def restore(self, state: dict[str, npt.NDArray[np.generic]]) -> None:
        """Continue from :meth:`state` taken on a detector with the same settings."""
        hist = np.asarray(state["hist"], dtype=np.float32)
        odf = np.asarray(state["odf"], dtype=np.float32)
        if hist.shape != self._hist.shape or odf.shape != self._odf_ring.shape:
            raise ValueError("onset state does not match this detector's settings")
        self._hist = hist.copy()
        self._odf_ring = odf.copy()
        self._ring_sum = float(state["sum"][0])
        self._frame, self._last_onset = (int(v) for v in state["counts"])

    @property
    def n_bands(self) -> int:
        return self._n_bands

    def _superflux(self, bands: F32) -> F32:
        odf: F32 = superflux_many([self], bands[None])[0]
        return odf

    def process(self, bands: F32, *, pick: bool = True) -> OnsetBatch:
        """Consume the next frames' log band energies.

        Parameters
        ----------
        bands : ndarray, shape (n_frames, n_bands), float32
            ``log10(1 + 1000 * energy)`` of consecutive frames, ``>= 0``.
        pick : bool
            Run the peak picker (``False``: ODF only; no onsets are returned).

        Returns
        -------
        OnsetBatch
        """
        odf = self._superflux(bands)
        return self.pick(odf, pick=pick)

    def pick(self, odf: F32, *, pick: bool = True) -> OnsetBatch:
        """Peak-pick ODF values from :func:`superflux_many` (``pick=False``: only count the
        frames)."""
        if not pick:
            # keep the ring current so that switching methods is not needed mid-stream
            self._frame += int(odf.shape[0])
            return OnsetBatch(odf, EMPTY_I64, EMPTY_F32)
        onsets: list[int] = []
        strengths: list[float] = []
        ring = self._odf_ring
        ring_n = ring.shape[0]
        thr = self.params.threshold
        for v in odf.tolist():
            t = self._frame
            pos = t % ring_n
            # moving sum over the last avg_n values (including this one)
            old = float(ring[(t - self._avg_n) % ring_n]) if t >= self._avg_n else 0.0
            ring[pos] = v
            self._ring_sum += v - old
            mean = self._ring_sum / min(t + 1, self._avg_n)
            level = mean + thr
            if v >= level and t - self._last_onset >= self._combine_n:
                lo = max(0, t - self._max_n + 1)
                is_max = all(v >= float(ring[i % ring_n]) for i in range(lo, t))
                if is_max:
                    onsets.append(t)
                    strengths.append(v - level)
                    self._last_onset = t
            self._frame += 1
        return OnsetBatch(
            odf=odf,
            onset_frames=np.asarray(onsets, dtype=np.int64),
            strengths=np.asarray(strengths, dtype=np.float32),
        )


def superflux_many(detectors: Sequence[OnsetDetector], bands: F32) -> F32:
    """SuperFlux ODF of the next frames of several streams (same settings, same frame count).

    Updates each detector's band history; call :meth:`OnsetDetector.pick` with each row after.

    Parameters
    ----------
    detectors : sequence of OnsetDetector
        One per stream, all built with the same parameters.
    bands : ndarray, shape (n_streams, n_frames, n_bands), float32
        Log band energies, ``>= 0``.

    Returns
    -------
    ndarray, shape (n_streams, n_frames), float32
        ODF, ``>= 0``.
    """
    d0 = detectors[0]
    p, lag, ref_n, depth = d0.params, d0._lag, d0._ref_n, d0._depth
    n = bands.shape[1]
    hist = np.stack([d._hist for d in detectors]) if len(detectors) > 1 else d0._hist[None]
    stacked = np.concatenate((hist, bands), axis=1)
    # rows of `stacked`: frame t sits at row t + depth; its references at rows
    # t + depth - lag - k for k in 0..ref_n-1
    src = stacked[:, : stacked.shape[1] - lag]
    maxed = src.copy()
    if p.max_filter_bands > 1:
        for s in range(1, p.max_filter_bands // 2 + 1):
            np.maximum(maxed[..., s:], src[..., :-s], out=maxed[..., s:])
            np.maximum(maxed[..., :-s], src[..., s:], out=maxed[..., :-s])
    off = ref_n - 1
    ref = maxed[:, off : off + n].copy()
    for k in range(1, ref_n):
        np.maximum(ref, maxed[:, off - k : off - k + n], out=ref)
    diff = bands - ref
    np.clip(diff, 0.0, p.band_rise_cap, out=diff)
    for b, d in enumerate(detectors):
        d._hist = stacked[b, -depth:].copy()
    return np.asarray(diff.sum(axis=2, dtype=np.float32), dtype=np.float32)
