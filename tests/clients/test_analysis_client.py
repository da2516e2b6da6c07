"""The client's own checks of what it is asked to send."""

import pytest

from clients.analysis_client import STREAM_ANALYSES, StreamOptions


def test_stream_options_name_the_bad_field_and_the_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"analyses: unknown 'FEEDBACK'; allowed: ONSETS, FEAT"):
        StreamOptions(analyses=("ONSETS", "FEEDBACK"))
    with pytest.raises(ValueError, match=r"chunk_frames must be >= 1, not 0"):
        StreamOptions(chunk_frames=0)
    assert StreamOptions(analyses=STREAM_ANALYSES).analyses == STREAM_ANALYSES
