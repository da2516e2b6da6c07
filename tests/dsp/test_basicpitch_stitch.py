"""Window geometry of the Basic Pitch stitcher, and the refined decisions on known posteriors."""

from __future__ import annotations

import numpy as np
import pytest

from edge_server.dsp.basicpitch import (
    FRAME_SAMPLES,
    N_KEYS,
    WINDOW_FRAMES,
    WINDOW_SAMPLES,
    Posteriors,
    WindowStitcher,
)
from edge_server.dsp.refined import FRAME_S, RefinedDecoder, RefinedParams


@pytest.mark.parametrize("chunk", [1000, 4096, 33_333])
def test_windows_cover_every_frame_once_in_order(chunk: int) -> None:
    n = 10 * 22_050 + 123
    ramp = np.arange(n, dtype=np.float32)  # sample value = stream index
    st = WindowStitcher(step_frames=128)
    wins = []
    for i in range(0, n, chunk):
        wins += st.push(ramp[i : i + chunk])
    wins += st.push(np.zeros(0, np.float32), final=True)
    frames = []
    for w, audio in wins:
        assert audio.shape == (WINDOW_SAMPLES,)
        start = (w * 128 - st.margin_frames) * FRAME_SAMPLES
        # window w starts at its stated stream sample (zeros before the stream start / after end)
        idx = start + np.arange(WINDOW_SAMPLES)
        ok = (idx >= 0) & (idx < n)
        np.testing.assert_array_equal(audio[ok], idx[ok].astype(np.float32))
        assert not audio[~ok].any()
        fake = np.repeat(np.arange(WINDOW_FRAMES, dtype=np.float32)[:, None], N_KEYS, axis=1)
        post = st.stitch(w, fake, fake)
        # the contributed rows are the window's own frames margin..margin+step
        assert post.note[0, 0] == st.margin_frames
        frames += list(range(post.first_frame, post.first_frame + post.note.shape[0]))
    assert frames == list(range(len(frames)))
    assert len(frames) * FRAME_SAMPLES >= n


def test_resumed_stitcher_starts_at_its_window() -> None:
    st = WindowStitcher(start_sample=5 * 22_050)
    assert st.first_frame % 128 == 0 and st.first_frame * FRAME_SAMPLES <= 5 * 22_050
    wins = st.push(np.ones(3 * 22_050, np.float32))
    assert wins and wins[0][0] * 128 == st.first_frame


def _post(first: int, n: int) -> Posteriors:
    return Posteriors(first, np.zeros((n, N_KEYS), np.float32), np.zeros((n, N_KEYS), np.float32))


def test_refined_decisions_snap_to_anchors_and_find_missed_onsets() -> None:
    p = _post(0, 256)
    t_anchor = 0.50
    f = int(t_anchor / FRAME_S)
    for k in (39, 43, 46):  # C-major chord at the anchor, model onset one frame late
        p.onset[f + 1, k] = 0.9
        p.note[f : f + 40, k] = 0.8
    g = int(2.0 / FRAME_S)  # a note with no anchor near it: an orphan onset
    p.onset[g, 50] = 0.95
    p.note[g : g + 20, 50] = 0.8
    dec = RefinedDecoder(params=RefinedParams())
    dec.add_anchor(0, t_anchor)
    notes, offs = dec.push(p, final=True)
    assert [(n.anchor, n.midi_pitch) for n in notes] == [(0, 60), (0, 64), (0, 67), (-1, 71)]
    assert all(n.onset_s == t_anchor for n in notes[:3])
    assert abs(notes[3].onset_s - 2.0) < 2 * FRAME_S
    assert sorted(o.midi_pitch for o in offs) == [60, 64, 67, 71]
    ends = {o.midi_pitch: o.offset_s for o in offs}
    assert abs(ends[60] - (f + 40) * FRAME_S) < 1e-6


def test_refined_waits_for_lookahead_before_deciding() -> None:
    dec = RefinedDecoder(params=RefinedParams(lookahead_s=0.2))
    dec.add_anchor(0, 1.4)
    p = _post(0, 128)  # covers 1.486 s: not yet 1.4 + 0.2
    p.onset[int(1.4 / FRAME_S), 40] = 0.9
    notes, _ = dec.push(p)
    assert notes == []
    notes, _ = dec.push(_post(128, 128))
    assert [n.midi_pitch for n in notes] == [61]
