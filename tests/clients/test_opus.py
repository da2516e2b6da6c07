"""Opus encoding on the client side."""

import pytest

from clients.opus import MAX_BITRATE_BPS, MIN_BITRATE_BPS, encode_opus
from clients.wav import WavAudio


@pytest.mark.parametrize("bitrate_bps", [0, MIN_BITRATE_BPS - 1, MAX_BITRATE_BPS + 1])
def test_bitrate_outside_libopus_range_is_refused_by_name(bitrate_bps: int) -> None:
    audio = WavAudio(b"\0\0" * 960, "PCM16_LE", 48000, 1)
    with pytest.raises(
        ValueError, match=rf"bitrate_bps must be in \[500, 512000\], not {bitrate_bps}"
    ):
        encode_opus(audio, bitrate_bps=bitrate_bps)


def test_bitrate_at_the_range_ends_encodes() -> None:
    audio = WavAudio(b"\0\0" * 960, "PCM16_LE", 48000, 1)
    for bitrate_bps in (MIN_BITRATE_BPS, MAX_BITRATE_BPS):
        assert len(encode_opus(audio, bitrate_bps=bitrate_bps).packets) == 1
