import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from clients.wav import read_wav


def _write_pcm(path: Path, x: np.ndarray, rate: int, width: int, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        if width == 2:
            w.writeframes((x * 32767).astype("<i2").tobytes())
        elif width == 3:
            v = (x * (2**23 - 1)).astype("<i4")
            w.writeframes(b"".join(struct.pack("<i", int(s))[:3] for s in v))


def _write_float(path: Path, x: np.ndarray, rate: int) -> None:
    data = x.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_pcm16_passes_through(tmp_path: Path) -> None:
    x = np.linspace(-0.5, 0.5, 1000)
    _write_pcm(tmp_path / "a.wav", x, 44100, 2)
    a = read_wav(tmp_path / "a.wav")
    assert (a.encoding, a.sample_rate_hz, a.channels, a.n_frames) == ("PCM16_LE", 44100, 1, 1000)


def test_24_bit_becomes_float32(tmp_path: Path) -> None:
    x = np.linspace(-0.5, 0.5, 1000)
    _write_pcm(tmp_path / "b.wav", x, 48000, 3)
    a = read_wav(tmp_path / "b.wav")
    assert a.encoding == "FLOAT32_LE"
    np.testing.assert_allclose(np.frombuffer(a.data, "<f4"), x, atol=1e-6)


def test_float_wav_at_96k_is_resampled_to_48k(tmp_path: Path) -> None:
    t = np.arange(96000) / 96000
    _write_float(tmp_path / "c.wav", 0.5 * np.sin(2 * np.pi * 1000 * t), 96000)
    a = read_wav(tmp_path / "c.wav")
    assert (a.encoding, a.sample_rate_hz, a.n_frames) == ("FLOAT32_LE", 48000, 48000)
    y = np.frombuffer(a.data, "<f4")
    assert np.argmax(np.abs(np.fft.rfft(y))) == pytest.approx(1000, abs=1)


def test_not_a_wav(tmp_path: Path) -> None:
    (tmp_path / "x.wav").write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a RIFF/WAVE"):
        read_wav(tmp_path / "x.wav")
