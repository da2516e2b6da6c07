"""The causal onset network: its inputs, and numpy inference that streams frame by frame.

A small network trained on self-rendered piano (``training/``) turns each analysis hop into
an onset probability and a loudness (velocity) estimate. It only looks at the current and
past frames. (Which keys an onset struck is :mod:`.onsetnotes`' job.)

Inputs per hop (``NetInputs``): log-compressed triangular filterbank energies of the long
frame (``frame_samples``, 36 bands per octave; below ~1.1 kHz at 22.05 kHz that is one band
per FFT bin) and of a short frame (the last ``short_samples`` of the same frame, 12 bands
per octave), which sees an attack one hop after it starts, before the long window does.

Network (weights in ``models/notenet.npz``; ``training/train.py``)::

    x_t  = [long_bands_t, short_bands_t, superflux_t]      normalised     (n_in,)
    h1_t = relu(A0 x_t + A1 x_{t-1} + A2 x_{t-2} + a)                     (n_h1,)
    g_t  = GRU(h1_t, g_{t-1})              (only with GRU weights)       (n_gru,)
    h2_t = relu(B [h1_{t-d} for d in taps, g_t] + b)                      (n_h2,)
    [onset_t, velocity_t] = sigmoid(C h2_t + c)

The taps see 93 ms; the GRU (PyTorch's gate order and equations) carries everything before,
e.g. how loud the room's tail and noise are. Streaming keeps the last two inputs, the last
``max(taps)`` hidden vectors and the GRU state, so output for frame t is the same whatever the
chunking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .fft import frames_rfft, hann_window
from .filterbank import log_compress, log_filterbank

F32 = npt.NDArray[np.float32]
MODEL_PATH = Path(__file__).parent / "models" / "notenet.npz"
_MAX_SHORT_FRAMES = 64
_GRU_WARM_HOPS = 1024  # silence the GRU state settles over (5.9 s) before a stream starts


@dataclass(frozen=True, kw_only=True)
class InputSpec:
    """Geometry of the network inputs (stored with the weights; must match the analyzer).

    Attributes
    ----------
    sample_rate_hz : int
        Analysis rate, Hz.
    frame_samples : int
        Long frame, samples.
    short_samples : int
        Short frame (tail of the long frame), samples.
    long_bands_per_octave, short_bands_per_octave : int
        Filterbank densities.
    f_min_hz, short_f_min_hz, f_max_hz : float
        Filterbank ranges, Hz.
    log_mul : float
        Compression ``log10(1 + log_mul * energy)`` of magnitudes of audio in ``[-1, 1]``.
    """

    sample_rate_hz: int = 22_050
    frame_samples: int = 1024
    short_samples: int = 256
    long_bands_per_octave: int = 36
    short_bands_per_octave: int = 12
    f_min_hz: float = 27.5
    short_f_min_hz: float = 80.0
    f_max_hz: float = 10_000.0
    log_mul: float = 1000.0

    def long_fb(self) -> F32:
        return log_filterbank(
            n_fft=self.frame_samples,
            sample_rate_hz=self.sample_rate_hz,
            bands_per_octave=self.long_bands_per_octave,
            f_min_hz=self.f_min_hz,
            f_max_hz=self.f_max_hz,
        )

    def short_fb(self) -> F32:
        return log_filterbank(
            n_fft=self.short_samples,
            sample_rate_hz=self.sample_rate_hz,
            bands_per_octave=self.short_bands_per_octave,
            f_min_hz=self.short_f_min_hz,
            f_max_hz=self.f_max_hz,
        )

    @property
    def n_inputs(self) -> int:
        """Network inputs: long bands, short bands and the SuperFlux ODF."""
        return int(self.long_fb().shape[1] + self.short_fb().shape[1] + 1)


def log_bands(mag: F32, fb: F32, log_mul: float) -> F32:
    """``log10(1 + log_mul * mag @ fb)``.

    Parameters
    ----------
    mag : ndarray, shape (n_frames, n_bins), float32
        Linear magnitudes, ``>= 0``.
    fb : ndarray, shape (n_bins, n_bands), float32
        Filterbank.
    log_mul : float
        Compression factor, ``> 0``.

    Returns
    -------
    ndarray, shape (n_frames, n_bands), float32
        Compressed band energies, ``>= 0``.
    """
    return np.asarray(log_compress(mag @ fb, mul=log_mul), dtype=np.float32)


def net_inputs(frames: F32, long_mag: F32, spec: InputSpec) -> tuple[F32, F32]:
    """Network inputs of consecutive hops.

    Parameters
    ----------
    frames : ndarray, shape (n_frames, frame_samples), float32
        The time-domain frames (for the short frame, their last ``short_samples``).
    long_mag : ndarray, shape (n_frames, frame_samples // 2 + 1), float32
        Magnitudes of the Hann-windowed long frames.
    spec : InputSpec
        Input geometry.

    Returns
    -------
    x : ndarray, shape (n_frames, n_inputs), float32
        ``[long_bands, short_bands, 0]``, bands ``log10(1 + log_mul * energy)``, ``>= 0``;
        the caller puts the SuperFlux ODF of the long bands in the last column.
    long_bands : ndarray, shape (n_frames, n_long_bands), float32
        The long-frame part of ``x`` (a view), reused for the SuperFlux feature.
    """
    n = frames.shape[0]
    lb = log_bands(long_mag, spec.long_fb(), spec.log_mul)
    fft = frames_rfft(frame_samples=spec.short_samples, max_frames=_MAX_SHORT_FRAMES)
    window = hann_window(spec.short_samples)
    parts = []
    for i in range(0, n, _MAX_SHORT_FRAMES):
        tail = frames[i : i + _MAX_SHORT_FRAMES, -spec.short_samples :]
        parts.append(log_bands(fft.magnitudes(tail, window), spec.short_fb(), spec.log_mul))
    sb = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
    x = np.empty((n, lb.shape[1] + sb.shape[1] + 1), dtype=np.float32)
    x[:, : lb.shape[1]] = lb
    x[:, lb.shape[1] : -1] = sb
    x[:, -1] = 0.0
    return x, x[:, : lb.shape[1]]


@dataclass(frozen=True)
class NetOutput:
    """Per-hop network outputs.

    Attributes
    ----------
    onset : ndarray, shape (n_frames,), float32
        Probability that an onset started within the last ~20 ms, ``[0, 1]``.
    velocity : ndarray, shape (n_frames,), float32
        Loudness of the latest strike, ``[0, 1]`` (MIDI velocity / 127).
    """

    onset: F32
    velocity: F32

    def stream_axis(self) -> NetOutput:
        """This one stream's output with a leading streams axis of length 1 (views)."""
        return NetOutput(self.onset[None], self.velocity[None])

    def stream(self, b: int) -> NetOutput:
        """Stream ``b`` of a batched output (leading axis: streams), as views."""
        return NetOutput(self.onset[b], self.velocity[b])


class NoteNetWeights:
    """Weights and settings loaded from an ``.npz`` (shared read-only by all sessions)."""

    def __init__(self, path: Path) -> None:
        def f32(z: Any, key: str) -> F32:
            arr = np.ascontiguousarray(z[key], dtype=np.float32)
            arr.flags.writeable = False
            return arr

        with np.load(path) as z:
            # one matmul for the three input taps: x_t @ [A0 | A1 | A2]
            self.a_cat = np.ascontiguousarray(
                np.concatenate([z[f"A{k}"] for k in range(3)], axis=1), dtype=np.float32
            )
            self.a_bias, self.b, self.b_bias = f32(z, "a"), f32(z, "B"), f32(z, "b")
            self.c, self.c_bias = f32(z, "C"), f32(z, "c")
            self.taps = tuple(int(t) for t in z["taps"])
            # optional GRU over h1: (n_h1, 3 n_gru), (n_gru, 3 n_gru) and biases; gates r, z, n
            self.n_gru = int(z["G_hh"].shape[0]) if "G_hh" in z.files else 0
            if self.n_gru:
                self.g_ih, self.g_hh = f32(z, "G_ih"), f32(z, "G_hh")
                self.g_ih_bias, self.g_hh_bias = f32(z, "g_ih"), f32(z, "g_hh")
                g = self.n_gru
                self.gi_bias = self.g_ih_bias + np.concatenate(
                    (self.g_hh_bias[: 2 * g], np.zeros(g, dtype=np.float32))
                )
                self.gi_bias.flags.writeable = False
            self.mean = f32(z, "mean")
            self.inv_std = (1.0 / z["std"]).astype(np.float32)
            spec = {k[5:]: z[k].item() for k in z.files if k.startswith("spec_")}
        self.spec = InputSpec(**spec)
        self.a_cat.flags.writeable = False
        if self.a_cat.shape[0] != self.spec.n_inputs:
            raise ValueError(
                f"{path}: weights take {self.a_cat.shape[0]} inputs, "
                f"the input spec gives {self.spec.n_inputs}"
            )
        self.n_long = int(self.spec.long_fb().shape[1])
        if self.b.shape[0] != self.n_h1 * len(self.taps) + self.n_gru:
            raise ValueError(f"{path}: layer B does not take the taps and the GRU state")
        self._silence: tuple[F32, F32, F32] | None = None

    def silence_state(self) -> tuple[F32, F32, F32]:
        """The streaming state after a long silence (all-zero inputs), computed once:
        ``(proj (2, 3 n_h1), h1 (max_tap, n_h1), gru (n_gru,))``, read-only."""
        if self._silence is None:
            h = self.n_h1
            net = NoteNet.__new__(NoteNet)
            net.w = self
            net._depth = max(self.taps)
            net._proj_hist = np.zeros((2, 3 * h), dtype=np.float32)
            net._h1_hist = np.zeros((net._depth, h), dtype=np.float32)
            net._g = np.zeros(self.n_gru, dtype=np.float32)
            hops = net._depth + 2 + (_GRU_WARM_HOPS if self.n_gru else 0)
            process_many([net], np.zeros((1, hops, self.spec.n_inputs), dtype=np.float32))
            parts = (net._proj_hist, net._h1_hist, net._g)
            for arr in parts:
                arr.flags.writeable = False
            self._silence = parts
        return self._silence

    @property
    def n_h1(self) -> int:
        return int(self.a_bias.shape[0])


@lru_cache(maxsize=2)
def load_weights(path: Path = MODEL_PATH) -> NoteNetWeights:
    """The shipped weights, loaded once per process."""
    return NoteNetWeights(path)


def _sigmoid(y: npt.NDArray[np.floating[Any]]) -> F32:
    """In place: ``1 / (1 + exp(-y)) = (1 + tanh(y / 2)) / 2``, which cannot overflow (the GRU's
    gates see pre-activations far below -88, where float32 ``exp(-y)`` would)."""
    y *= 0.5
    np.tanh(y, out=y)
    y += 1.0
    y *= 0.5
    return np.asarray(y, dtype=np.float32)


class NoteNet:
    """Streaming inference for one stream.

    Parameters
    ----------
    weights : NoteNetWeights
        Shared weights.
    """

    def __init__(self, *, weights: NoteNetWeights) -> None:
        self.w = weights
        self._depth = max(weights.taps)
        # start as if the stream had been silent (all-zero inputs), not from zero history,
        # which the network never saw in training and can read as an onset. The histories:
        # projections of the last two inputs through A1, A2 (pending contributions), the last
        # max(taps) h1 vectors, the GRU state.
        proj, h1, g = weights.silence_state()
        self._proj_hist: F32 = proj.copy()
        self._h1_hist: F32 = h1.copy()
        self._g: F32 = g.copy()

    def state(self) -> dict[str, npt.NDArray[np.generic]]:
        """``proj`` (2, 3 n_h1), ``h1`` (max_tap, n_h1), with a GRU ``gru`` (n_gru,):
        float32."""
        out: dict[str, npt.NDArray[np.generic]] = {
            "proj": self._proj_hist.copy(),
            "h1": self._h1_hist.copy(),
        }
        if self.w.n_gru:
            out["gru"] = self._g.copy()
        return out

    def restore(self, state: dict[str, npt.NDArray[np.generic]]) -> None:
        proj = np.asarray(state["proj"], dtype=np.float32)
        h1 = np.asarray(state["h1"], dtype=np.float32)
        g = np.asarray(state["gru"] if self.w.n_gru else self._g, dtype=np.float32)
        if (
            proj.shape != self._proj_hist.shape
            or h1.shape != self._h1_hist.shape
            or g.shape != self._g.shape
        ):
            raise ValueError("note network state does not match these weights")
        self._proj_hist, self._h1_hist, self._g = proj.copy(), h1.copy(), g.copy()

    def process(self, x: F32) -> NetOutput:
        """Run the next frames.

        Parameters
        ----------
        x : ndarray, shape (n_frames, n_inputs), float32
            :func:`net_inputs` of consecutive hops (with the SuperFlux ODF as last column).

        Returns
        -------
        NetOutput
        """
        return process_many([self], x[None]).stream(0)


def process_many(nets: Sequence[NoteNet], x: F32) -> NetOutput:
    """Run the next frames of several streams in one pass (same weights, same frame count).

    Each stream's result equals its own :meth:`NoteNet.process` (up to float rounding of the
    larger matrix products); the histories are updated the same way.

    Parameters
    ----------
    nets : sequence of NoteNet
        One per stream, all with the same weights.
    x : ndarray, shape (n_streams, n_frames, n_inputs), float32
        :func:`net_inputs` of each stream's consecutive hops.

    Returns
    -------
    NetOutput
        With a leading streams axis on every array (:meth:`NetOutput.stream` picks one).
    """
    w = nets[0].w
    h = w.n_h1
    bn, n = x.shape[0], x.shape[1]
    rows = bn * n
    xn = (x - w.mean) * w.inv_std
    proj = np.concatenate(
        (_stack([q._proj_hist for q in nets]), (xn.reshape(rows, -1) @ w.a_cat).reshape(bn, n, -1)),
        axis=1,
    )  # (streams, 2 + n, 3h)
    # h1_t = A0 x_t + A1 x_{t-1} + A2 x_{t-2}: row t+2 holds A*x_t
    h1 = proj[:, 2:, :h] + proj[:, 1:-1, h : 2 * h] + proj[:, :-2, 2 * h :] + w.a_bias
    np.maximum(h1, 0.0, out=h1)
    d0 = nets[0]._depth
    hist = np.concatenate((_stack([q._h1_hist for q in nets]), h1), axis=1)  # row t + d0 = t
    parts = [hist[:, d0 - d : d0 - d + n] for d in w.taps]
    if w.n_gru:
        parts.append(_gru_many(nets, h1))
    taps = np.concatenate(parts, axis=2)
    h2 = taps.reshape(rows, -1) @ w.b + w.b_bias
    np.maximum(h2, 0.0, out=h2)
    for b, q in enumerate(nets):
        q._proj_hist = proj[b, -2:].copy()
        q._h1_hist = hist[b, -d0:].copy()
    y = _sigmoid(h2 @ w.c + w.c_bias).reshape(bn, n, 2)
    return NetOutput(onset=y[:, :, 0], velocity=y[:, :, 1])


def _gru_many(nets: Sequence[NoteNet], h1: F32) -> F32:
    """The GRU over ``h1`` (streams, n, n_h1) from each net's state; returns its outputs
    (streams, n, n_gru) and leaves each net's state at the last hop."""
    w = nets[0].w
    bn, n, g = h1.shape[0], h1.shape[1], w.n_gru
    # r and z add both biases; n multiplies the recurrent one's part by r
    gi = (h1.reshape(bn * n, -1) @ w.g_ih + w.gi_bias).reshape(bn, n, 3 * g)
    state = _stack([q._g for q in nets])
    out = np.empty((bn, n, g), dtype=np.float32)
    for t in range(n):
        gh = state @ w.g_hh  # (streams, 3 n_gru)
        rz = _sigmoid(gi[:, t, : 2 * g] + gh[:, : 2 * g])
        gh_n = gh[:, 2 * g :]
        gh_n += w.g_hh_bias[2 * g :]
        cand = np.tanh(gi[:, t, 2 * g :] + rz[:, :g] * gh_n)
        state = cand + rz[:, g:] * (state - cand)  # (1 - z) n + z h
        out[:, t] = state
    for b, q in enumerate(nets):
        q._g = state[b].copy()
    return out


def _stack(arrays: list[F32]) -> F32:
    return arrays[0][None] if len(arrays) == 1 else np.stack(arrays)
