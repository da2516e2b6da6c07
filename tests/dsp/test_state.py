"""Snapshot and restore of the analysis state: a restored analyzer continues exactly."""

from __future__ import annotations

import numpy as np
import pytest

from edge_server.dsp.analyzer import AnalyzerConfig, StreamAnalyzer
from edge_server.dsp.onset import OnsetParams
from tests.signals import piano_like


@pytest.mark.parametrize("rate_hz", [44_100, 22_050, 48_000])
def test_restored_analyzer_matches_an_uninterrupted_one(rate_hz: int) -> None:
    x = piano_like(sample_rate_hz=rate_hz, duration_s=3.0, onsets_s=[0.3, 1.1, 1.9, 2.5])
    cut = 61_111 * rate_hz // 44_100  # not a multiple of anything
    cfg = AnalyzerConfig()
    whole = StreamAnalyzer(input_rate_hz=rate_hz, config=cfg)
    a1 = whole.process(x[:cut])
    a2 = whole.process(x[cut:])

    first = StreamAnalyzer(input_rate_hz=rate_hz, config=cfg)
    b1 = first.process(x[:cut])
    state = first.state()
    second = StreamAnalyzer(input_rate_hz=rate_hz, config=cfg)
    second.restore(state)
    b2 = second.process(x[cut:])

    for p, q in ((a1, b1), (a2, b2)):
        np.testing.assert_array_equal(p.onset_times_s, q.onset_times_s)
        np.testing.assert_array_equal(p.flux, q.flux)
        np.testing.assert_array_equal(p.rms_db, q.rms_db)
    assert a1.onset_times_s.size + a2.onset_times_s.size == 4
    assert second.stream_time_s == pytest.approx(3.0)


def test_restore_refuses_a_state_of_another_geometry() -> None:
    a = StreamAnalyzer(input_rate_hz=44_100, config=AnalyzerConfig())
    b = StreamAnalyzer(input_rate_hz=44_100, config=AnalyzerConfig(onset=OnsetParams(lag_frames=3)))
    with pytest.raises(ValueError, match="does not match"):
        b.restore(a.state())
    with pytest.raises(ValueError, match="lacks"):
        b.restore({})


def test_state_without_notes_leaves_the_fast_tier_out() -> None:
    x = piano_like(sample_rate_hz=44_100, duration_s=1.0, onsets_s=[0.3])
    plain = StreamAnalyzer(input_rate_hz=44_100, config=AnalyzerConfig(), notes=False)
    plain.process(x)
    state = plain.state()
    assert not [k for k in state if k.startswith("notes.")]
    with_notes = StreamAnalyzer(input_rate_hz=44_100, config=AnalyzerConfig(), notes=True)
    with_notes.process(x)
    assert "notes.ring" in with_notes.state()
    # a state saved without the fast tier cannot continue a stream that reports notes
    with pytest.raises(ValueError, match="lacks"):
        StreamAnalyzer(input_rate_hz=44_100, config=AnalyzerConfig(), notes=True).restore(state)
    # and one saved with it restores into a stream without notes (the part is ignored)
    other = StreamAnalyzer(input_rate_hz=44_100, config=AnalyzerConfig(), notes=False)
    other.restore(with_notes.state())
    assert other.stream_time_s == pytest.approx(1.0)
