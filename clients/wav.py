"""Read WAV files into the wire formats the server accepts."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

MIN_RATE_HZ = 8_000
MAX_RATE_HZ = 48_000


@dataclass(frozen=True)
class WavAudio:
    """Audio ready to stream.

    Attributes
    ----------
    data : bytes
        Interleaved little-endian samples in ``encoding``.
    encoding : str
        ``"PCM16_LE"`` or ``"FLOAT32_LE"``.
    sample_rate_hz : int
    channels : int
        1 or 2.
    """

    data: bytes
    encoding: str
    sample_rate_hz: int
    channels: int

    @property
    def frame_bytes(self) -> int:
        return self.channels * (2 if self.encoding == "PCM16_LE" else 4)

    @property
    def n_frames(self) -> int:
        return len(self.data) // self.frame_bytes

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.sample_rate_hz


def _parse(raw: bytes, path: Path) -> tuple[int, int, int, int, bytes]:
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    pos, fmt, data = 12, None, None
    while pos + 8 <= len(raw):
        cid, size = raw[pos : pos + 4], struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        body = raw[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            fmt = body
        elif cid == b"data":
            data = body
        pos += 8 + size + (size & 1)
    if fmt is None or data is None:
        raise ValueError(f"{path}: missing fmt or data chunk")
    tag, channels, rate = struct.unpack("<HHI", fmt[:8])
    bits = struct.unpack("<H", fmt[14:16])[0]
    if tag == 0xFFFE and len(fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: real tag in the GUID
        tag = struct.unpack("<H", fmt[24:26])[0]
    return tag, channels, rate, bits, data


def _to_float(tag: int, bits: int, data: bytes, path: Path) -> npt.NDArray[np.float32]:
    if tag == 1 and bits == 8:
        return (np.frombuffer(data, np.uint8).astype(np.float32) - 128.0) / 128.0
    if tag == 1 and bits == 16:
        return np.frombuffer(data[: len(data) // 2 * 2], "<i2").astype(np.float32) / 32768.0
    if tag == 1 and bits == 24:
        b = np.frombuffer(data[: len(data) // 3 * 3], np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        return (v / float(1 << 23)).astype(np.float32)
    if tag == 1 and bits == 32:
        return (np.frombuffer(data[: len(data) // 4 * 4], "<i4") / float(1 << 31)).astype(
            np.float32
        )
    if tag == 3 and bits in (32, 64):
        width = bits // 8
        raw = np.frombuffer(data[: len(data) // width * width], f"<f{width}")
        return np.asarray(np.nan_to_num(raw), dtype=np.float32)
    raise ValueError(f"{path}: unsupported WAV format tag {tag} with {bits} bits")


def _resample(x: npt.NDArray[np.float32], rate: int, target: int) -> npt.NDArray[np.float32]:
    """Band-limited resampling of ``(n, channels)`` audio (windowed sinc via FFT)."""
    n_out = int(round(x.shape[0] * target / rate))
    spec = np.fft.rfft(x, axis=0)
    keep = min(spec.shape[0], n_out // 2 + 1)
    out = np.fft.irfft(spec[:keep], n=n_out, axis=0) * (n_out / x.shape[0])
    return np.asarray(out, dtype=np.float32)


def read_wav(path: str | Path) -> WavAudio:
    """Read a WAV and convert it to something the server accepts.

    16-bit PCM at 8-48 kHz with 1-2 channels is sent as it is; other widths become FLOAT32;
    more than 2 channels are mixed to mono; rates outside 8-48 kHz are resampled to the
    nearest bound.
    """
    p = Path(path)
    tag, channels, rate, bits, data = _parse(p.read_bytes(), p)
    if channels < 1:
        raise ValueError(f"{p}: {channels} channels")
    if tag == 1 and bits == 16 and channels <= 2 and MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        n = len(data) // (2 * channels) * 2 * channels
        return WavAudio(bytes(data[:n]), "PCM16_LE", rate, channels)
    x = _to_float(tag, bits, data, p)
    x = x[: x.shape[0] // channels * channels].reshape(-1, channels)
    if channels > 2:
        x = x.mean(axis=1, keepdims=True)
        channels = 1
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        target = min(max(rate, MIN_RATE_HZ), MAX_RATE_HZ)
        x = _resample(x, rate, target)
        rate = target
    x = np.clip(x, -1.0, 1.0)
    return WavAudio(x.astype("<f4").tobytes(), "FLOAT32_LE", rate, channels)
