"""The client's own checks of what it is asked to send."""

import pytest

from clients.analysis_client import STREAM_ANALYSES, ChunkResultEvent, Onset, StreamOptions
from clients.results import StreamResult


def test_stream_options_name_the_bad_field_and_the_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"analyses: unknown 'FEEDBACK'; allowed: ONSETS, FEAT"):
        StreamOptions(analyses=("ONSETS", "FEEDBACK"))
    with pytest.raises(ValueError, match=r"chunk_frames must be >= 1, not 0"):
        StreamOptions(chunk_frames=0)
    assert StreamOptions(analyses=STREAM_ANALYSES).analyses == STREAM_ANALYSES


def test_a_result_drops_withdrawn_onsets_by_their_exact_time() -> None:
    r = StreamResult()
    on = tuple(Onset(t, 0.9, t + 0.01) for t in (0.1, 1.0 / 3, 0.5))
    r.add(ChunkResultEvent(0, on, None, 0.5, None, 0.1))
    r.add(ChunkResultEvent(1, (Onset(0.6, 0.9, 0.61),), None, 0.6, None, 0.1,
                           retracted_onsets_s=(1.0 / 3, 0.77)))  # fmt: skip
    assert r.onset_times_s() == [0.1, 0.5, 0.6]
