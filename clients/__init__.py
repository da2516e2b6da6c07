"""Seminote Edge clients: a typed async gRPC client library and the ``edge-client`` CLI."""

from .analysis_client import (
    AnalysisClient,
    ChunkResultEvent,
    FlowControlEvent,
    StreamEvent,
    StreamOptions,
    StreamStartedEvent,
    StreamSummaryEvent,
    StreamWarningEvent,
)
from .wav import WavAudio, read_wav

__all__ = [
    "AnalysisClient",
    "ChunkResultEvent",
    "FlowControlEvent",
    "StreamEvent",
    "StreamOptions",
    "StreamStartedEvent",
    "StreamSummaryEvent",
    "StreamWarningEvent",
    "WavAudio",
    "read_wav",
]
