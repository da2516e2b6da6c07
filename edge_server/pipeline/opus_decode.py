"""Opus packets -> mono float32, with RFC 6716 packet checks before libopus sees them."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import opuslib

OPUS_RATES_HZ = (8_000, 12_000, 16_000, 24_000, 48_000)
MAX_FRAME_BYTES = 1275  # RFC 6716 R2
MAX_PACKET_MS = 120.0  # RFC 6716 R5
MAX_PACKET_BYTES = 48 * MAX_FRAME_BYTES + 100  # 48 frames of 2.5 ms + header bytes

# Frame duration (ms) by TOC config number (RFC 6716 section 3.1, table 2).
_FRAME_MS = [10, 20, 40, 60] * 3 + [10, 20] * 2 + [2.5, 5, 10, 20] * 4


class MalformedPacket(ValueError):
    """The packet breaks RFC 6716 or libopus refused it; the message says how."""


def packet_duration_ms(packet: bytes) -> float:
    """Check the packet's framing (RFC 6716 section 3.2) and return its duration in ms."""
    n = len(packet)
    if n < 1:
        raise MalformedPacket("empty packet (R1: at least one byte)")
    toc = packet[0]
    frame_ms = _FRAME_MS[toc >> 3]
    code = toc & 0x3
    if code == 0:
        if n - 1 > MAX_FRAME_BYTES:
            raise MalformedPacket(f"code 0 frame of {n - 1} bytes > {MAX_FRAME_BYTES} (R2)")
        frames = 1
    elif code == 1:
        if (n - 1) % 2 or (n - 1) // 2 > MAX_FRAME_BYTES:
            raise MalformedPacket(
                f"code 1 payload of {n - 1} bytes is not two equal frames <= 1275 (R3)"
            )
        frames = 2
    elif code == 2:
        if n < 2:
            raise MalformedPacket("code 2 packet without a frame length (R4)")
        frames = 2
    else:
        if n < 2:
            raise MalformedPacket("code 3 packet without a frame count byte (R6)")
        frames = packet[1] & 0x3F
        if frames == 0:
            raise MalformedPacket("code 3 packet with 0 frames (R5)")
    duration = frames * frame_ms
    if duration > MAX_PACKET_MS:
        raise MalformedPacket(f"{frames} frames of {frame_ms} ms = {duration} ms > 120 ms (R5)")
    return float(duration)


class OpusPacketDecoder:
    """One stream's Opus decoder (stateful: packets must come in order).

    Parameters
    ----------
    sample_rate_hz : int
        Decoder output rate, one of 8000, 12000, 16000, 24000, 48000.
    channels : int
        1 or 2; stereo is averaged to mono.
    """

    def __init__(self, *, sample_rate_hz: int, channels: int) -> None:
        if sample_rate_hz not in OPUS_RATES_HZ:
            raise ValueError(f"Opus decodes at {OPUS_RATES_HZ} Hz, not {sample_rate_hz}")
        self.sample_rate_hz = sample_rate_hz
        self.channels = channels
        self._dec = opuslib.Decoder(sample_rate_hz, channels)
        self.malformed = 0

    def decode(self, packet: bytes) -> npt.NDArray[np.float32]:
        """Decode one packet to mono float32 in ``[-1, 1]``; raises :class:`MalformedPacket`."""
        try:
            duration_ms = packet_duration_ms(packet)
            max_samples = int(self.sample_rate_hz * duration_ms / 1000)
            pcm = self._dec.decode(packet, max(max_samples, 1))
        except MalformedPacket:
            self.malformed += 1
            raise
        except opuslib.OpusError as e:
            self.malformed += 1
            raise MalformedPacket(f"libopus refused it: {e}") from None
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) * np.float32(1 / 32768)
        if self.channels == 2:
            x = x.reshape(-1, 2).mean(axis=1, dtype=np.float32)
        return x
