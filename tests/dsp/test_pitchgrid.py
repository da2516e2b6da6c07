"""The pitch grid on synthetic tones with known frequencies."""

from __future__ import annotations

import numpy as np

from edge_server.dsp.pitchgrid import (
    BINS_PER_SEMITONE,
    N_GRID,
    grid_map,
    harmonic_shifts,
    key_bin,
    pitch_spectrum,
)

RATE = 22_050
N_FFT = 1024


def _mag(freq_hz: float) -> np.ndarray:
    t = np.arange(N_FFT) / RATE
    x = 0.5 * np.sin(2 * np.pi * freq_hz * t)
    w = np.hanning(N_FFT + 1)[:-1]
    return np.abs(np.fft.rfft(x * w)).astype(np.float32)[None]


def test_weights_are_normalised_and_in_range() -> None:
    gm = grid_map(n_fft=N_FFT, sample_rate_hz=RATE)
    sums = np.add.reduceat(gm.weight, gm.starts)
    np.testing.assert_allclose(sums, 1.0, rtol=1e-5)
    assert gm.starts.shape == (N_GRID,)
    assert gm.index.min() >= 0 and gm.index.max() <= N_FFT // 2


def test_a_tone_peaks_at_its_key() -> None:
    gm = grid_map(n_fft=N_FFT, sample_rate_hz=RATE)
    for midi in (57, 69, 81, 93):  # high enough that one FFT bin is under a semitone
        g = pitch_spectrum(_mag(440.0 * 2 ** ((midi - 69) / 12)), gm)[0]
        assert abs(int(np.argmax(g)) - key_bin(midi)) <= 1


def test_silence_is_zero_and_levels_grow_with_amplitude() -> None:
    gm = grid_map(n_fft=N_FFT, sample_rate_hz=RATE)
    assert np.all(pitch_spectrum(np.zeros((2, N_FFT // 2 + 1), np.float32), gm) == 0)
    loud = pitch_spectrum(_mag(880.0), gm)[0, key_bin(81)]
    soft = pitch_spectrum(_mag(880.0) * 0.01, gm)[0, key_bin(81)]
    assert loud > soft > 0


def test_harmonic_shifts_are_octaves_and_twelfths() -> None:
    assert harmonic_shifts((0.5, 1.0, 2.0, 3.0, 4.0)) == (
        -12 * BINS_PER_SEMITONE, 0, 12 * BINS_PER_SEMITONE, 57, 24 * BINS_PER_SEMITONE,
    )  # fmt: skip
