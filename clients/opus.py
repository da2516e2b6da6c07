"""Encode audio to Opus packets for ``AUDIO_ENCODING_OPUS`` streams (opuslib, libopus)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import opuslib

from .wav import WavAudio, _resample

OPUS_RATE_HZ = 48_000
#: libopus's bitrate range, bit/s
MIN_BITRATE_BPS = 500
MAX_BITRATE_BPS = 512_000
FRAME_MS = 20


@dataclass(frozen=True)
class OpusAudio:
    """20 ms Opus packets at 48 kHz."""

    packets: tuple[bytes, ...]
    sample_rate_hz: int
    channels: int

    @property
    def duration_s(self) -> float:
        return len(self.packets) * FRAME_MS / 1000


def encode_opus(audio: WavAudio, *, bitrate_bps: int = 64_000) -> OpusAudio:
    """Resample to 48 kHz if needed and encode 20 ms packets (application AUDIO);
    ``bitrate_bps`` in ``[MIN_BITRATE_BPS, MAX_BITRATE_BPS]`` (libopus's range)."""
    if not MIN_BITRATE_BPS <= bitrate_bps <= MAX_BITRATE_BPS:
        raise ValueError(
            f"Opus bitrate_bps must be in [{MIN_BITRATE_BPS}, {MAX_BITRATE_BPS}], not {bitrate_bps}"
        )
    if audio.encoding == "PCM16_LE":
        x = np.frombuffer(audio.data, "<i2").astype(np.float32) / 32768.0
    else:
        x = np.frombuffer(audio.data, "<f4").astype(np.float32)
    x = x.reshape(-1, audio.channels)
    if audio.sample_rate_hz != OPUS_RATE_HZ:
        x = _resample(x, audio.sample_rate_hz, OPUS_RATE_HZ)
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    frame = OPUS_RATE_HZ * FRAME_MS // 1000
    pad = (-pcm.shape[0]) % frame
    pcm = np.concatenate([pcm, np.zeros((pad, audio.channels), "<i2")])
    enc = opuslib.Encoder(OPUS_RATE_HZ, audio.channels, opuslib.APPLICATION_AUDIO)
    enc.bitrate = bitrate_bps
    packets = tuple(
        bytes(enc.encode(pcm[i : i + frame].tobytes(), frame))
        for i in range(0, pcm.shape[0], frame)
    )
    return OpusAudio(packets, OPUS_RATE_HZ, audio.channels)
