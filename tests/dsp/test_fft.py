import numpy as np

from edge_server.dsp.fft import frames_rfft


def test_magnitudes_match_numpy_and_buffers_are_reused() -> None:
    rng = np.random.default_rng(0)
    fft = frames_rfft(frame_samples=256, max_frames=8)
    window = np.hanning(256).astype(np.float32)
    frames = rng.standard_normal((5, 256)).astype(np.float32)
    mag = fft.magnitudes(frames, window)
    np.testing.assert_allclose(mag, np.abs(np.fft.rfft(frames * window)), rtol=1e-4, atol=1e-4)
    base = mag.base if mag.base is not None else mag
    mag2 = fft.magnitudes(frames[:3], window)
    assert (mag2.base if mag2.base is not None else mag2) is base
    assert frames_rfft(frame_samples=256, max_frames=8) is fft
