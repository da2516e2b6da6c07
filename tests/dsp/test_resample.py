import numpy as np
import pytest

from edge_server.dsp.resample import StreamingResampler, process_many
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


@pytest.mark.parametrize("rate", [48000, 44100, 88200])  # rational; integer decimation x2, x4
@pytest.mark.parametrize("chunk", [1, 7, 30, 31, 441, 1024, 4000])
def test_output_does_not_depend_on_chunking(rate: int, chunk: int) -> None:
    x = np.random.default_rng(3).standard_normal(9000).astype(np.float32)
    ref = _run(StreamingResampler(in_rate_hz=rate, out_rate_hz=22050), x, 9000)
    got = _run(StreamingResampler(in_rate_hz=rate, out_rate_hz=22050), x, chunk)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("rate", [44100, 88200])
def test_decimation_is_the_filter_at_every_down_th_sample(rate: int) -> None:
    # y[m] = sum_j h[j] x[m * down - j], x = 0 before the stream, in float64
    r = StreamingResampler(in_rate_hz=rate, out_rate_hz=22050)
    down = rate // 22050
    h = r._phases[0].astype(np.float64)
    x = np.random.default_rng(5).standard_normal(5000).astype(np.float32)
    want = np.convolve(x.astype(np.float64), h)[: len(x)][::down]
    got = _run(r, x, 1024)
    assert len(got) == len(want)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)


def test_many_streams_in_different_phases_resample_like_one() -> None:
    # streams at 44.1 kHz whose sample counts differ in parity decimate in separate groups;
    # chunk lengths vary per call; every stream's output equals its own resampler alone
    rng = np.random.default_rng(9)
    n_streams = 7
    many = [StreamingResampler(in_rate_hz=44100, out_rate_hz=22050) for _ in range(n_streams)]
    alone = [StreamingResampler(in_rate_hz=44100, out_rate_hz=22050) for _ in range(n_streams)]
    got: list[list[np.ndarray]] = [[] for _ in range(n_streams)]
    want: list[list[np.ndarray]] = [[] for _ in range(n_streams)]
    for step in range(12):
        xs = [
            rng.standard_normal(int(rng.integers(0, 1500)) if step % 3 else 1024).astype(np.float32)
            for _ in range(n_streams)
        ]
        for i, y in enumerate(process_many(many, xs)):
            got[i].append(y)
        for i, (r, x) in enumerate(zip(alone, xs, strict=True)):
            want[i].append(r.process(x))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(np.concatenate(g), np.concatenate(w), rtol=0, atol=1e-6)


def test_delay_is_reported() -> None:
    r = StreamingResampler(in_rate_hz=44100, out_rate_hz=22050)
    x = np.zeros(4410, dtype=np.float32)
    x[1000] = 1.0
    y = r.process(x)
    peak_t = np.argmax(y) / 22050
    assert peak_t - 1000 / 44100 == pytest.approx(r.delay_s, abs=1 / 22050)
