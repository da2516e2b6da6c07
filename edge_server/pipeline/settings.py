"""Validated per-stream settings (what the client asked for)."""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass

from .errors import invalid

OPUS_RATES_HZ = (8_000, 12_000, 16_000, 24_000, 48_000)
MIN_SAMPLE_RATE_HZ = 8_000
MAX_SAMPLE_RATE_HZ = 48_000
_SESSION_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class Encoding(enum.Enum):
    PCM16_LE = "PCM16_LE"
    FLOAT32_LE = "FLOAT32_LE"
    #: one Opus packet per chunk (RFC 6716), decoded at the configured rate
    OPUS = "OPUS"

    @property
    def sample_bytes(self) -> int:
        """Bytes per sample of the PCM encodings (Opus: 2, the decoder's int16 output)."""
        return 4 if self is Encoding.FLOAT32_LE else 2


class AnalysisKind(enum.Enum):
    ONSETS = "ONSETS"
    FEATURES = "FEATURES"
    #: fast-tier notes (causal network, <= ~50 ms after the onset)
    NOTES = "NOTES"
    #: fast notes plus the refined tier (Basic Pitch, ~2 s later)
    REFINED_NOTES = "REFINED_NOTES"


DEFAULT_ANALYSES = frozenset({AnalysisKind.ONSETS, AnalysisKind.FEATURES})


@dataclass(frozen=True, kw_only=True)
class StreamSettings:
    sample_rate_hz: int
    encoding: Encoding
    channels: int
    analyses: frozenset[AnalysisKind]
    session_id: str
    client_name: str


def validate_session_id(session_id: str, *, field: str = "session_id") -> str:
    if not _SESSION_ID.match(session_id):
        raise invalid(
            f"{field}={session_id[:40]!r} is invalid; use 1..128 characters of [A-Za-z0-9._-]"
        )
    return session_id


def make_settings(
    *,
    sample_rate_hz: int,
    encoding: Encoding,
    channels: int,
    analyses: frozenset[AnalysisKind],
    session_id: str,
    client_name: str,
) -> StreamSettings:
    """Check ranges and return settings; raises :class:`StreamError` naming the field."""
    if not MIN_SAMPLE_RATE_HZ <= sample_rate_hz <= MAX_SAMPLE_RATE_HZ:
        raise invalid(
            f"config.sample_rate_hz={sample_rate_hz} is out of range "
            f"[{MIN_SAMPLE_RATE_HZ}, {MAX_SAMPLE_RATE_HZ}] Hz"
        )
    if encoding is Encoding.OPUS and sample_rate_hz not in OPUS_RATES_HZ:
        raise invalid(
            f"config.sample_rate_hz={sample_rate_hz} is not an Opus rate; allowed with "
            "AUDIO_ENCODING_OPUS: 8000, 12000, 16000, 24000, 48000"
        )
    if channels not in (1, 2):
        raise invalid(f"config.channels={channels} is out of range [1, 2]")
    validate_session_id(session_id, field="config.session_id")
    if len(client_name) > 64:
        raise invalid(f"config.client_name has {len(client_name)} characters; at most 64")
    return StreamSettings(
        sample_rate_hz=sample_rate_hz,
        encoding=encoding,
        channels=channels,
        analyses=analyses or DEFAULT_ANALYSES,
        session_id=session_id,
        client_name=client_name,
    )


def settings_to_blob(s: StreamSettings) -> bytes:
    """The stream format as stored with a session (JSON)."""
    return json.dumps(
        {
            "sample_rate_hz": s.sample_rate_hz,
            "encoding": s.encoding.value,
            "channels": s.channels,
            "analyses": sorted(a.value for a in s.analyses),
            "client_name": s.client_name,
        }
    ).encode()


def check_resumed_format(requested: StreamSettings, stored_blob: bytes) -> None:
    """A resumed stream must keep the stored format; raises naming the differing field."""
    try:
        stored = json.loads(stored_blob)
    except ValueError:
        return  # config lost with a store restart: the requested one is taken as is
    for name, value in (
        ("sample_rate_hz", requested.sample_rate_hz),
        ("encoding", requested.encoding.value),
        ("channels", requested.channels),
    ):
        if stored.get(name) != value:
            raise invalid(
                f"config.{name}={value} differs from the stored session's {stored.get(name)}; "
                "a resumed stream keeps its format"
            )
