import numpy as np
import pytest

from edge_server.dsp.resample import StreamingResampler
from tests.signals import tone


def _run(r: StreamingResampler, x: np.ndarray, chunk: int) -> np.ndarray:
    return np.concatenate([r.process(x[i : i + chunk]) for i in range(0, len(x), chunk)])


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_tone_keeps_its_frequency_and_level(rate: int) -> None:
    x = tone(sample_rate_hz=rate, duration_s=1.0, freq_hz=1000.0)
    y = _run(StreamingResampler(in_rate_hz=rate, out_rate_hz=22050), x, 960)
    assert abs(len(y) - 22050) <= 1
    seg = y[2000:]
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    peak_hz = np.argmax(spec) * 22050 / len(seg)
    assert abs(peak_hz - 1000.0) < 3.0
    assert np.sqrt(np.mean(seg**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_content_above_output_nyquist_is_removed() -> None:
    x = tone(sample_rate_hz=48000, duration_s=0.5, freq_hz=15000.0)
    y = _run(StreamingResampler(in_rate_hz=48000, out_rate_hz=22050), x, 960)
    assert np.sqrt(np.mean(y[1000:] ** 2)) < 0.5 / np.sqrt(2) * 1e-3  # < -60 dB


@pytest.mark.parametrize("chunk", [1, 7, 441, 4000])
def test_output_does_not_depend_on_chunking(chunk: int) -> None:
    x = np.random.default_rng(3).standard_normal(9000).astype(np.float32)
    ref = _run(StreamingResampler(in_rate_hz=48000, out_rate_hz=22050), x, 9000)
    got = _run(StreamingResampler(in_rate_hz=48000, out_rate_hz=22050), x, chunk)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)


def test_delay_is_reported() -> None:
    r = StreamingResampler(in_rate_hz=44100, out_rate_hz=22050)
    x = np.zeros(4410, dtype=np.float32)
    x[1000] = 1.0
    y = r.process(x)
    peak_t = np.argmax(y) / 22050
    assert peak_t - 1000 / 44100 == pytest.approx(r.delay_s, abs=1 / 22050)
