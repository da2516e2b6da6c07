"""Onset decisions on prescribed network outputs: crossings, refractory time, the short-band
gate (also when the rise comes a hop or two after the crossing), chunking and state."""

from __future__ import annotations

import numpy as np

from edge_server.dsp.netonsets import DecisionParams, NetOnsetDecoder, decide_onsets_many
from edge_server.dsp.notenet import NetOutput

HOP_S = 128 / 22_050


def _out(prob: list[float]) -> NetOutput:
    p = np.asarray(prob, np.float32)
    return NetOutput(onset=p, velocity=np.full_like(p, 0.5))


def _short(n: int, rises_at: list[int], size: float = 10.0) -> np.ndarray:
    """Short bands that step up by ``size`` (summed over bands) at the given hops."""
    s = np.zeros((n, 4), np.float32)
    for h in rises_at:
        s[h:] += size / 4
    return s


def _dec(**kw: float) -> NetOnsetDecoder:
    return NetOnsetDecoder(hop_s=HOP_S, params=DecisionParams(**kw))  # type: ignore[arg-type]


def test_fires_once_per_upward_crossing_with_a_rise() -> None:
    p = [0.0] * 40
    for h in (5, 6, 7, 25, 26):
        p[h] = 0.9
    d = _dec(onset_threshold=0.5).process(_out(p), _short(40, [5, 25]))
    assert d.onset_frames.tolist() == [5, 25]


def test_refractory_time_and_gate() -> None:
    p = [0.0] * 40
    for h in (5, 8, 20):
        p[h] = 0.9
    # 8 is 3 hops (17 ms) after 5: inside the 30 ms refractory time; 20 has no rise
    d = _dec(onset_threshold=0.5).process(_out(p), _short(40, [5, 8]))
    assert d.onset_frames.tolist() == [5]


def test_a_rise_just_after_the_crossing_still_fires_within_the_wait() -> None:
    p = [0.0] * 30
    for h in range(5, 12):
        p[h] = 0.9
    assert _dec(onset_threshold=0.5).process(_out(p), _short(30, [7])).onset_frames.tolist() == [7]
    late = _dec(onset_threshold=0.5).process(_out(p), _short(30, [10]))
    assert late.onset_frames.tolist() == []  # 5 hops after the crossing: too late


def test_chunking_and_restore_do_not_change_decisions() -> None:
    rng = np.random.default_rng(0)
    p = (rng.uniform(size=300) > 0.9).astype(np.float32) * 0.95
    rises = [int(h) for h in np.flatnonzero(p)]
    short = _short(300, rises)
    whole = _dec().process(_out(p.tolist()), short).onset_frames.tolist()
    assert len(whole) > 5
    parts: list[int] = []
    a = _dec()
    for i in range(0, 150, 7):
        j = min(i + 7, 150)
        parts += a.process(_out(p[i:j].tolist()), short[i:j]).onset_frames.tolist()
    b = _dec()
    b.restore(a.state())
    parts += b.process(_out(p[150:].tolist()), short[150:]).onset_frames.tolist()
    assert parts == whole


def test_many_streams_decide_like_one() -> None:
    rng = np.random.default_rng(1)
    probs = (rng.uniform(size=(3, 50)) > 0.85).astype(np.float32)
    shorts = np.stack([_short(50, [int(h) for h in np.flatnonzero(q)]) for q in probs])
    out = NetOutput(onset=probs, velocity=np.zeros_like(probs))
    many = decide_onsets_many([_dec(), _dec(), _dec()], out, shorts)
    for b in range(3):
        one = _dec().process(_out(probs[b].tolist()), shorts[b])
        assert many[b].onset_frames.tolist() == one.onset_frames.tolist()


def test_a_wobble_around_the_threshold_fires_once_until_the_probability_falls_low() -> None:
    # one note's probability wobbles 0.45 / 0.30 after its onset (the short bands keep rising,
    # as in a held chord): the re-arm margin 0.2 (re-arm below 0.15) lets only the first fire
    p = [0.0] * 60
    for h in range(5, 45, 8):
        p[h] = p[h + 1] = 0.45
        p[h + 2 : h + 8] = [0.30] * 6
    p[45:50] = [0.0] * 5
    p[52] = 0.45  # after a real fall: a new note
    short = _short(60, [5, 13, 21, 29, 37, 52])
    kw = {"adapt_window_s": 0.0}
    assert _dec(rearm_margin=0.2, **kw).process(_out(p), short).onset_frames.tolist() == [5, 52]
    every = _dec(rearm_margin=0.0, **kw).process(_out(p), short).onset_frames.tolist()
    assert every == [5, 13, 21, 29, 37, 52]


def test_after_a_strong_onset_the_threshold_is_raised_for_the_window() -> None:
    # a 0.9 onset, then crossings of 0.40 (under 0.5 x 0.9) 17 and 29 hops later, and of 0.40
    # again 65 hops later (past the 0.35 s = 60-hop window)
    p = [0.0] * 90
    p[5] = 0.9
    for h in (22, 34, 70):
        p[h] = 0.40
    short = _short(90, [5, 22, 34, 70])
    kw = {"adapt_ratio": 0.5, "adapt_window_s": 0.35}
    assert _dec(**kw).process(_out(p), short).onset_frames.tolist() == [5, 70]
    unraised = _dec(adapt_window_s=0.0).process(_out(p), short).onset_frames.tolist()
    assert unraised == [5, 22, 34, 70]
    # 0.46 clears 0.45 inside the window; the window then follows that weaker onset (0.5 x 0.46
    # is under the 0.35 threshold), so 34 fires too
    p[22] = 0.46
    assert _dec(**kw).process(_out(p), short).onset_frames.tolist() == [5, 22, 34, 70]


def test_state_of_the_version_before_the_adaptive_threshold_restores() -> None:
    d = _dec()
    d.restore(
        {
            "counts": np.array([100, 90, -1], np.int64),
            "prev_p": np.array([0.1, 0.0], np.float64),
            "prev_short": np.zeros(4, np.float32),
        }
    )
    p = [0.0] * 10
    p[3] = 0.4
    got = d.process(_out(p), _short(10, [3])).onset_frames.tolist()
    assert got == [103]  # re-armed, no raised threshold: 0.4 over 0.35 fires


def test_bad_parameters_name_the_field_and_range() -> None:
    import pytest

    with pytest.raises(ValueError, match=r"decisions.rearm_margin must be in \[0, 0.35\]"):
        DecisionParams(rearm_margin=0.5)
    with pytest.raises(ValueError, match=r"decisions.adapt_ratio must be in \[0, 1\]"):
        DecisionParams(adapt_ratio=-0.1)
