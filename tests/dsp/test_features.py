import numpy as np
import pytest

from edge_server.dsp.features import rms_db, spectral_centroid_hz
from tests.signals import tone


def test_rms_of_sine_and_silence() -> None:
    x = tone(sample_rate_hz=22050, duration_s=0.1, freq_hz=1000.0, amp=1.0)[:2048]
    frames = np.stack([x[:1024], np.zeros(1024, dtype=np.float32)])
    db = rms_db(frames)
    assert db[0] == pytest.approx(-3.01, abs=0.05)
    assert db[1] == -120.0


def test_centroid_of_a_pure_tone_is_its_frequency() -> None:
    x = tone(sample_rate_hz=22050, duration_s=0.1, freq_hz=2000.0)[:1024]
    mag = np.abs(np.fft.rfft(x * np.hanning(1024)))[None, :].astype(np.float32)
    bins = (np.arange(513) * 22050 / 1024).astype(np.float32)
    assert spectral_centroid_hz(mag, bins)[0] == pytest.approx(2000.0, abs=25.0)
    assert spectral_centroid_hz(np.zeros_like(mag), bins)[0] == 0.0
