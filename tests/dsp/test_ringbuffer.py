import numpy as np
import pytest

from edge_server.dsp.ringbuffer import FrameRing


def _frames_for(x: np.ndarray, chunk: int, frame: int = 8, hop: int = 3) -> np.ndarray:
    ring = FrameRing(frame_samples=frame, hop_samples=hop, max_write_samples=64)
    out = []
    for i in range(0, len(x), chunk):
        ring.write(x[i : i + chunk])
        out.append(ring.take_frames().copy())
    return np.concatenate(out)


def test_frames_are_at_absolute_positions_with_zero_preroll() -> None:
    x = np.arange(1, 31, dtype=np.float32)
    frames = _frames_for(x, chunk=7)
    # frame k ends at sample (k + 1) * hop
    assert frames.shape == (10, 8)
    assert frames[0].tolist() == [0, 0, 0, 0, 0, 1, 2, 3]
    assert frames[1].tolist() == [0, 0, 1, 2, 3, 4, 5, 6]
    assert frames[-1].tolist() == list(range(23, 31))


@pytest.mark.parametrize("chunk", [1, 2, 5, 13, 64])
def test_output_does_not_depend_on_chunking(chunk: int) -> None:
    x = np.random.default_rng(0).standard_normal(500).astype(np.float32)
    np.testing.assert_array_equal(_frames_for(x, chunk), _frames_for(x, 50))


def test_write_larger_than_capacity_is_refused() -> None:
    ring = FrameRing(frame_samples=8, hop_samples=4, max_write_samples=16)
    with pytest.raises(ValueError, match="max_write_samples"):
        ring.write(np.zeros(17, dtype=np.float32))


def test_storage_is_not_reallocated() -> None:
    ring = FrameRing(frame_samples=8, hop_samples=4, max_write_samples=16)
    buf = ring._buf
    for _ in range(100):
        ring.write(np.ones(16, dtype=np.float32))
        ring.take_frames()
    assert ring._buf is buf
