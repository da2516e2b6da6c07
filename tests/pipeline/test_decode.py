import numpy as np
import pytest

from edge_server.pipeline.decode import decode_audio
from edge_server.pipeline.errors import ErrorKind, StreamError
from edge_server.pipeline.settings import Encoding


def test_pcm16_stereo_is_mixed_to_mono() -> None:
    pcm = np.array([[16384, -16384], [32767, 32767]], dtype="<i2").tobytes()
    x = decode_audio(pcm, encoding=Encoding.PCM16_LE, channels=2, max_bytes=100)
    np.testing.assert_allclose(x, [0.0, 32767 / 32768], atol=1e-6)
    assert x.dtype == np.float32


def test_odd_byte_count_names_field_and_frame_size() -> None:
    with pytest.raises(StreamError) as e:
        decode_audio(b"\x00" * 7, encoding=Encoding.PCM16_LE, channels=1, max_bytes=100)
    assert e.value.kind is ErrorKind.INVALID_ARGUMENT
    assert "audio.data" in e.value.message and "multiple of 2" in e.value.message


def test_oversized_chunk_is_resource_exhausted() -> None:
    with pytest.raises(StreamError) as e:
        decode_audio(b"\x00" * 102, encoding=Encoding.PCM16_LE, channels=1, max_bytes=100)
    assert e.value.kind is ErrorKind.RESOURCE_EXHAUSTED
    assert "102 bytes" in e.value.message and "100 bytes" in e.value.message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float32_is_refused(bad: float) -> None:
    data = np.array([0.1, 0.2, bad, 0.0], dtype="<f4").tobytes()
    with pytest.raises(StreamError) as e:
        decode_audio(data, encoding=Encoding.FLOAT32_LE, channels=1, max_bytes=100)
    assert e.value.kind is ErrorKind.INVALID_ARGUMENT
    assert "sample 2" in e.value.message and "finite" in e.value.message


def test_float32_is_clipped_to_full_scale() -> None:
    data = np.array([2.0, -3.0, 0.25], dtype="<f4").tobytes()
    x = decode_audio(data, encoding=Encoding.FLOAT32_LE, channels=1, max_bytes=100)
    np.testing.assert_array_equal(x, [1.0, -1.0, 0.25])
