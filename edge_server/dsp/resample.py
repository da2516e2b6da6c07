"""Streaming rational resampling with a polyphase windowed-sinc filter."""

from __future__ import annotations

from collections.abc import Sequence
from math import gcd

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


class StreamingResampler:
    """Resample a mono stream chunk by chunk; output is independent of the chunking.

    Output sample ``m`` sits at input position ``m * in_rate_hz / out_rate_hz``, filtered by a
    Kaiser-windowed sinc low-pass at ``0.92 * min(in, out) / 2``. The filter is causal, so the
    output lags the input by :attr:`delay_s`.

    Parameters
    ----------
    in_rate_hz, out_rate_hz : int
        Positive sample rates in Hz.
    taps_per_phase : int
        Filter taps per polyphase branch (quality vs. cost), ``>= 4``.
    """

    def __init__(self, *, in_rate_hz: int, out_rate_hz: int, taps_per_phase: int = 32) -> None:
        if in_rate_hz <= 0 or out_rate_hz <= 0:
            raise ValueError("sample rates must be positive")
        if taps_per_phase < 4:
            raise ValueError("taps_per_phase must be >= 4")
        g = gcd(in_rate_hz, out_rate_hz)
        self.up = out_rate_hz // g
        self.down = in_rate_hz // g
        self.in_rate_hz = in_rate_hz
        self.out_rate_hz = out_rate_hz
        k = taps_per_phase
        n_taps = self.up * k
        cutoff = 0.5 * 0.92 / max(self.up, self.down)  # cycles per upsampled sample
        n = np.arange(n_taps, dtype=np.float64)
        centre = (n_taps - 1) / 2.0
        h = 2.0 * cutoff * np.sinc(2.0 * cutoff * (n - centre)) * np.kaiser(n_taps, 8.6)
        h *= self.up / h.sum()  # unit DC gain per polyphase branch
        # phases[p, j] = h[p + j * up]; applied to x[i0 - j].
        self._phases = np.ascontiguousarray(h.reshape(k, self.up).T, dtype=np.float32)
        self._k = k
        self._hist: F32 = np.zeros(k - 1, dtype=np.float32)
        self._n_in = 0
        self._n_out = 0
        self._j = np.arange(k, dtype=np.int64)
        self.delay_s = centre / self.up / in_rate_hz

    def state(self) -> dict[str, npt.NDArray[np.generic]]:
        """Everything that makes the next output depend on past input, as arrays.

        Returns
        -------
        dict
            ``hist`` : ndarray, shape (taps_per_phase - 1,), float32, the last input samples;
            ``counts`` : ndarray, shape (2,), int64, samples in and out so far.
        """
        return {
            "hist": self._hist.copy(),
            "counts": np.array([self._n_in, self._n_out], dtype=np.int64),
        }

    def restore(self, state: dict[str, npt.NDArray[np.generic]]) -> None:
        """Continue from :meth:`state` taken on a resampler with the same rates."""
        hist = np.asarray(state["hist"], dtype=np.float32)
        if hist.shape != self._hist.shape:
            raise ValueError(f"resampler state: hist shape {hist.shape} != {self._hist.shape}")
        self._hist = hist.copy()
        self._n_in, self._n_out = (int(v) for v in state["counts"])

    @property
    def identity(self) -> bool:
        return self.up == 1 and self.down == 1

    def process(self, x: F32) -> F32:
        """Resample the next chunk, shape ``(n,)`` float32; returns ``(m,)`` float32."""
        return process_many([self], [x])[0]

    def _process_one(self, x: F32) -> F32:
        if self.identity:
            return x
        n_prev = self._n_in
        self._n_in += int(x.shape[0])
        m_end = -(-self._n_in * self.up // self.down)  # ceil(n_in * up / down)
        m = np.arange(self._n_out, m_end, dtype=np.int64)
        self._n_out = m_end
        buf = np.concatenate((self._hist, x))
        if m.size and self.up == 1:
            # integer decimation: y[m] = sum_j h[j] x[m * down - j]; "valid" convolution index
            # v holds the output at buffer index v + k - 1
            first = int(m[0]) * self.down - (n_prev - (self._k - 1))
            full = np.convolve(buf, self._phases[0], mode="valid")
            out = np.asarray(full[first - (self._k - 1) :: self.down][: m.size], np.float32)
        elif m.size:
            t = m * self.down
            phase = t % self.up
            i0 = t // self.up - (n_prev - (self._k - 1))  # index into buf
            idx = i0[:, None] - self._j[None, :]
            out = np.asarray(np.einsum("ij,ij->i", buf[idx], self._phases[phase]), np.float32)
        else:
            out = np.zeros(0, dtype=np.float32)
        self._hist = buf[buf.shape[0] - (self._k - 1) :].copy()
        return out


def process_many(resamplers: Sequence[StreamingResampler], xs: Sequence[F32]) -> list[F32]:
    """Resample the next chunk of several independent streams.

    Streams that decimate by an integer factor and are at the same position modulo the factor
    with chunks of the same length are run as one strided matrix product; the others one by
    one. Each result equals ``r.process(x)`` for that stream alone.

    Parameters
    ----------
    resamplers : sequence of StreamingResampler
        One per stream, all distinct.
    xs : sequence of ndarray, shape (n_i,), float32
        Each stream's next samples.

    Returns
    -------
    list of ndarray, shape (m_i,), float32
    """
    out: list[F32 | None] = [None] * len(resamplers)
    # same rates and taps: the same filter
    groups: dict[tuple[int, int, int, int, int], list[int]] = {}
    for i, (r, x) in enumerate(zip(resamplers, xs, strict=True)):
        if r.identity or r.up != 1:
            out[i] = r._process_one(x)
        else:
            key = (r.in_rate_hz, r.out_rate_hz, r._k, int(x.shape[0]), r._n_in % r.down)
            groups.setdefault(key, []).append(i)
    for members in groups.values():
        _decimate_group([resamplers[i] for i in members], [xs[i] for i in members], out, members)
    return [o for o in out if o is not None]


def _decimate_group(
    rs: list[StreamingResampler], xs: list[F32], out: list[F32 | None], where: list[int]
) -> None:
    """Integer decimation of streams in the same phase: ``y[j] = sum_i h[i] x[m0*down + j*down
    - i]`` for all streams in one product over a strided (streams, outputs, taps) view."""
    r0 = rs[0]
    k, down, n = r0._k, r0.down, int(xs[0].shape[0])
    buf = np.empty((len(rs), k - 1 + n), dtype=np.float32)
    # the same for every stream of the group (same n_in modulo down):
    start = -r0._n_in % down  # = m0 * down - n_in, m0 the first output due
    m = -(-(r0._n_in + n) // down) - -(-r0._n_in // down)
    for b, (r, x) in enumerate(zip(rs, xs, strict=True)):
        buf[b, : k - 1] = r._hist
        buf[b, k - 1 :] = x
    if m > 0:
        # output j is the product of h (reversed) with buf[start + j*down : ... + k]
        s0, s1 = buf.strides
        view = np.lib.stride_tricks.as_strided(
            buf[:, start:], shape=(len(rs), m, k), strides=(s0, down * s1, s1), writeable=False
        )
        y = np.matmul(view, _reversed(r0._phases))
    else:
        y = np.zeros((len(rs), 0), dtype=np.float32)
    for b, r in enumerate(rs):
        r._n_in += n
        r._n_out += m
        r._hist = buf[b, buf.shape[1] - (k - 1) :].copy()
        out[where[b]] = np.asarray(y[b], dtype=np.float32)


def _reversed(phases: F32) -> F32:
    """Branch 0 of the polyphase filter, time-reversed (taps in input order)."""
    return np.ascontiguousarray(phases[0, ::-1])
