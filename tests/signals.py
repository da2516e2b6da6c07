"""Synthetic test signals with known answers."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


def piano_like(
    *,
    sample_rate_hz: int,
    duration_s: float,
    onsets_s: list[float],
    f0_hz: float | list[float] = 440.0,
    amp: float = 0.3,
    decay_s: float = 0.4,
    seed: int = 0,
) -> F32:
    """Decaying harmonic tones (6 partials, 2 ms attack) starting at ``onsets_s``."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate_hz)
    x = np.zeros(n, dtype=np.float64)
    f0s = f0_hz if isinstance(f0_hz, list) else [f0_hz] * len(onsets_s)
    for t0, f0 in zip(onsets_s, f0s, strict=True):
        i0 = int(round(t0 * sample_rate_hz))
        m = n - i0
        t = np.arange(m) / sample_rate_hz
        env = np.exp(-t / decay_s) * np.minimum(1.0, t / 0.002)
        tone = sum(
            (0.6**k) * np.sin(2 * np.pi * f0 * (k + 1) * t + rng.uniform(0, 6.28)) for k in range(6)
        )
        x[i0:] += amp * env * tone
    return x.astype(np.float32)


def clicks(
    *, sample_rate_hz: int, duration_s: float, onsets_s: list[float], amp: float = 0.5
) -> F32:
    """Short decaying noise bursts (5 ms) at ``onsets_s``."""
    rng = np.random.default_rng(1)
    n = int(duration_s * sample_rate_hz)
    x = np.zeros(n, dtype=np.float32)
    burst_n = int(0.005 * sample_rate_hz)
    burst = rng.standard_normal(burst_n) * np.exp(-np.arange(burst_n) / (burst_n / 4))
    for t0 in onsets_s:
        i0 = int(round(t0 * sample_rate_hz))
        x[i0 : i0 + burst_n] += (amp * burst[: n - i0]).astype(np.float32)
    return x


def tone(*, sample_rate_hz: int, duration_s: float, freq_hz: float, amp: float = 0.5) -> F32:
    t = np.arange(int(duration_s * sample_rate_hz)) / sample_rate_hz
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def struck_string(
    *,
    sample_rate_hz: int,
    duration_s: float,
    notes: list[tuple[float, int]],
    amp: float = 0.2,
    seed: int = 0,
) -> F32:
    """Idealised piano strings: ``notes`` = ``(onset_s, midi_pitch)``.

    Each note: 12 partials of a stiff string (``f_k = k f0 sqrt(1 + B k^2)``, B = 4e-4),
    amplitudes ``1 / k``, higher partials decaying faster (``tau_k = 1.2 s / k^0.7``), a 2 ms
    attack and a 4 ms hammer-noise burst.
    """
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate_hz)
    x = np.zeros(n, dtype=np.float64)
    for t0, pitch in notes:
        f0 = 440.0 * 2 ** ((pitch - 69) / 12)
        i0 = int(round(t0 * sample_rate_hz))
        if i0 >= n:
            continue
        t = np.arange(n - i0) / sample_rate_hz
        y = np.zeros(n - i0)
        for k in range(1, 13):
            fk = k * f0 * np.sqrt(1 + 4e-4 * k * k)
            if fk > 0.45 * sample_rate_hz:
                break
            tau = 1.2 / k**0.7
            y += np.sin(2 * np.pi * fk * t + rng.uniform(0, 6.28)) * np.exp(-t / tau) / k
        y *= np.minimum(1.0, t / 0.002)
        burst = int(0.004 * sample_rate_hz)
        y[:burst] += (
            0.3
            * rng.standard_normal(min(burst, y.size))
            * np.exp(-np.arange(min(burst, y.size)) / (burst / 3))
        )
        x[i0:] += amp * y
    return x.astype(np.float32)


def pink_noise(*, sample_rate_hz: int, duration_s: float, rms: float, seed: int = 0) -> F32:
    """Pink (1/f power) noise with the given RMS."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate_hz)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    y = np.fft.irfft(spec / np.sqrt(f), n)
    return (y / np.sqrt(np.mean(y**2)) * rms).astype(np.float32)
