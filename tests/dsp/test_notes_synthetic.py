"""Onsets and both note tiers on synthetic struck strings with known answers (shipped models)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_server.dsp.analyzer import AnalyzerConfig, StreamAnalyzer
from edge_server.dsp.basicpitch import WindowStitcher, run_windows
from edge_server.dsp.refined import RefinedDecoder
from tests.signals import pink_noise, struck_string

RATE = 44_100


def _fast(x: np.ndarray) -> tuple[list[float], list[tuple[float, int, float]]]:
    an = StreamAnalyzer(input_rate_hz=RATE, config=AnalyzerConfig(), notes=True)
    onsets: list[float] = []
    notes: list[tuple[float, int, float]] = []  # (onset, pitch, decided at)
    for i in range(0, x.size, 1024):
        b = an.process(x[i : i + 1024])
        onsets += b.onset_times_s.tolist()
        notes += [(n.onset_s, n.midi_pitch, n.detected_at_s) for n in b.note_ons]
    return onsets, notes


def _refined(x: np.ndarray) -> list[tuple[float, int]]:
    an = StreamAnalyzer(input_rate_hz=RATE, config=AnalyzerConfig())
    dec = RefinedDecoder()
    st = WindowStitcher()
    out: list[tuple[float, int]] = []
    anchor = 0
    blocks = [an.process(x[i : i + 1024]) for i in range(0, x.size, 1024)]
    for b in blocks:
        for t in b.onset_times_s.tolist():
            dec.add_anchor(anchor, t)
            anchor += 1
    wins = st.push(np.concatenate([b.samples for b in blocks]), final=True)
    for j, (w, audio) in enumerate(wins):
        note, onset = run_windows(audio[None, :])
        got, _ = dec.push(st.stitch(w, note[0], onset[0]), final=j == len(wins) - 1)
        out += [(n.onset_s, n.midi_pitch) for n in got]
    return out


def _chord() -> np.ndarray:
    return struck_string(
        sample_rate_hz=RATE, duration_s=2.0, notes=[(0.5, 60), (0.5, 64), (0.5, 67)]
    )


def _repeated() -> np.ndarray:
    return struck_string(sample_rate_hz=RATE, duration_s=2.5, notes=[(0.5, 57), (1.3, 57)])


def _under_noise(snr_db: float) -> np.ndarray:
    clean = struck_string(sample_rate_hz=RATE, duration_s=2.0, notes=[(0.7, 72)])
    sig_rms = float(np.sqrt(np.mean(clean[int(0.7 * RATE) : int(1.2 * RATE)] ** 2)))
    return clean + pink_noise(
        sample_rate_hz=RATE, duration_s=2.0, rms=sig_rms / 10 ** (snr_db / 20)
    )


def test_chord_is_one_onset() -> None:
    onsets, _ = _fast(_chord())
    assert len(onsets) == 1 and abs(onsets[0] - 0.5) < 0.02


def test_refined_c_major_chord_is_three_pitches() -> None:
    got = _refined(_chord())
    assert sorted(p for _, p in got) == [60, 64, 67]
    assert all(abs(t - 0.5) < 0.02 for t, _ in got)


def test_repeated_note_is_two_onsets() -> None:
    onsets, notes = _fast(_repeated())
    np.testing.assert_allclose(onsets, [0.5, 1.3], atol=0.02)
    assert [p for _, p, _ in notes] == [57, 57]


@pytest.mark.xfail(
    strict=True,
    reason="the onsets are right (0.50 and 1.30 s; test_repeated_note_is_two_onsets), but at the "
    "second strike of this synthetic string Basic Pitch also hears its octave and twelfth",
)
def test_refined_repeated_note_is_two_notes() -> None:
    got = _refined(_repeated())
    assert [p for _, p in got] == [57, 57]
    np.testing.assert_allclose([t for t, _ in got], [0.5, 1.3], atol=0.02)


@pytest.mark.parametrize("snr_db", [20.0, 10.0])
def test_refined_note_under_pink_noise(snr_db: float) -> None:
    x = _under_noise(snr_db)
    onsets, _ = _fast(x)
    late = [t for t in onsets if t > 0.2]  # the noise itself starts with the stream
    assert len(late) == 1 and abs(late[0] - 0.7) < 0.02
    assert [p for t, p in _refined(x) if t > 0.2] == [72]


def test_silence_then_noise_gives_no_refined_notes() -> None:
    x = pink_noise(sample_rate_hz=RATE, duration_s=2.0, rms=0.01)
    x[: RATE // 2] = 0.0
    assert _refined(x) == []


def test_fast_c_major_chord_is_three_pitches_within_50_ms() -> None:
    _, notes = _fast(_chord())
    assert sorted(p for _, p, _ in notes) == [60, 64, 67]
    assert all(abs(t - 0.5) < 0.02 and decided - 0.5 <= 0.05 for t, _, decided in notes)


def test_fast_repeated_note_is_two_notes() -> None:
    onsets, notes = _fast(_repeated())
    np.testing.assert_allclose(onsets, [0.5, 1.3], atol=0.02)
    assert [p for _, p, _ in notes] == [57, 57]


def test_fast_note_under_pink_noise() -> None:
    _, notes = _fast(_under_noise(20.0))
    assert [p for t, p, _ in notes if t > 0.2] == [72]
