import random

import numpy as np
import opuslib
import pytest

from edge_server.pipeline.opus_decode import (
    MalformedPacket,
    OpusPacketDecoder,
    packet_duration_ms,
)
from tests.signals import tone


def _encode_tone(freq_hz: float, seconds: float = 0.5) -> list[bytes]:
    x = (tone(sample_rate_hz=48000, duration_s=seconds, freq_hz=freq_hz) * 32767).astype("<i2")
    enc = opuslib.Encoder(48000, 1, opuslib.APPLICATION_AUDIO)
    enc.bitrate = 64000
    return [bytes(enc.encode(x[i : i + 960].tobytes(), 960)) for i in range(0, len(x) - 959, 960)]


@pytest.mark.parametrize(
    ("packet", "needle"),
    [
        (b"", "R1"),
        (bytes([0x78]) + b"\0" * 1276, "R2"),  # code 0, 1276-byte frame
        (bytes([0x79]) + b"\0" * 5, "R3"),  # code 1, odd payload
        (bytes([0x7B, 0x00]), "0 frames"),  # code 3, M = 0
        (bytes([0x1B, 0x03]), "180 ms > 120 ms"),  # config 3 (60 ms) x 3 frames
        (bytes([0x7A]), "R4"),  # code 2 without a length
    ],
)
def test_rfc6716_framing_rules(packet: bytes, needle: str) -> None:
    with pytest.raises(MalformedPacket, match=needle):
        packet_duration_ms(packet)


def test_valid_packet_durations() -> None:
    assert packet_duration_ms(bytes([0x78, 1, 2])) == 20.0  # CELT 20 ms, code 0
    assert packet_duration_ms(bytes([0x1B, 2])) == 120.0  # SILK 60 ms (config 3) x 2, code 3


def test_tone_survives_encoding() -> None:
    dec = OpusPacketDecoder(sample_rate_hz=48000, channels=1)
    y = np.concatenate([dec.decode(p) for p in _encode_tone(1000.0)])
    assert len(y) == 25 * 960
    seg = y[4800:]
    peak_hz = np.argmax(np.abs(np.fft.rfft(seg * np.hanning(len(seg))))) * 48000 / len(seg)
    assert abs(peak_hz - 1000.0) < 5.0


def test_ten_thousand_random_or_truncated_packets_never_crash() -> None:
    rng = random.Random(1)
    good = _encode_tone(440.0, 1.0)
    dec = OpusPacketDecoder(sample_rate_hz=48000, channels=1)
    bad = ok = 0
    for i in range(10_000):
        kind = i % 3
        if kind == 0:
            p = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 1500)))
        elif kind == 1:
            g = rng.choice(good)
            p = g[: rng.randrange(0, len(g))]
        else:
            p = bytearray(rng.choice(good))
            p[rng.randrange(len(p))] ^= 1 << rng.randrange(8)
            p = bytes(p)
        try:
            out = dec.decode(p)
            assert out.dtype == np.float32 and np.all(np.abs(out) <= 1.0)
            ok += 1
        except MalformedPacket:
            bad += 1
    assert bad == dec.malformed and bad + ok == 10_000 and bad > 1000
    # the decoder still decodes good audio afterwards
    y = np.concatenate([dec.decode(p) for p in good[:10]])
    assert len(y) == 9600
