"""Reconciliation of the refined tier with fast notes, on posteriors with known answers.

The pool here answers each window with posteriors drawn from a known score (the real model is
exercised in tests/dsp/test_notes_synthetic.py and tests/transport/test_notes_grpc.py).
"""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np

from edge_server.dsp.basicpitch import FRAME_SAMPLES, N_KEYS, WINDOW_FRAMES, WindowStitcher
from edge_server.dsp.notedecoder import NoteOn
from edge_server.pipeline.events import NoteAction, NoteTier
from edge_server.pipeline.refined_tier import REFINED_ID_BASE, RefinedTier

RATE = 22_050
SCORE = [(0.5, 60, 0.6), (0.5, 64, 0.6), (0.5, 67, 0.6), (1.5, 50, 0.4)]  # onset, pitch, dur


class ScorePool:
    """Answers window w with the score's posteriors for the frames it covers."""

    def __init__(self) -> None:
        self.margin = WindowStitcher().margin_frames
        self.calls = 0

    def submit(self, window: np.ndarray) -> Future[tuple[np.ndarray, np.ndarray]]:
        w = self.calls
        self.calls += 1
        first = w * 128 - self.margin
        note = np.zeros((1, WINDOW_FRAMES, N_KEYS), np.float32)
        onset = np.zeros((1, WINDOW_FRAMES, N_KEYS), np.float32)
        for t, pitch, dur in SCORE:
            f = int(t * RATE / FRAME_SAMPLES) - first
            n = int(dur * RATE / FRAME_SAMPLES)
            if 0 <= f < WINDOW_FRAMES:
                onset[0, f, pitch - 21] = 0.9
            note[0, max(f, 0) : max(0, min(f + n, WINDOW_FRAMES)), pitch - 21] = 0.8
        fut: Future[tuple[np.ndarray, np.ndarray]] = Future()
        fut.set_result((note, onset))
        return fut


def _on(nid: int, pitch: int, t: float) -> NoteOn:
    return NoteOn(nid, pitch, t, t + 0.03, 0.5, 0.9)


def test_confirm_correct_retract_and_refined_only_notes() -> None:
    tier = RefinedTier(pool=ScorePool())  # type: ignore[arg-type]
    events = []
    hop = 1024
    audio = np.zeros(int(3.5 * RATE), np.float32)
    fast = {
        0.5: [_on(1, 60, 0.5), _on(2, 64, 0.5), _on(3, 65, 0.5)],  # 65: should be 67
        1.0: [_on(4, 72, 1.0)],  # not played
        1.5: [],  # 50 missed by the fast tier
    }
    for i in range(0, audio.size, hop):
        t0, t1 = i / RATE, (i + hop) / RATE
        onsets = [t for t in fast if t0 <= t < t1]
        ons = tuple(n for t in onsets for n in fast[t])
        events += tier.add(audio[i : i + hop], onsets, ons)
    events += tier.finish()
    by = {(e.action, e.note_id): e for e in events}
    assert all(e.tier is NoteTier.REFINED for e in events)
    assert (NoteAction.CONFIRM, 1) in by and (NoteAction.CONFIRM, 2) in by
    assert by[(NoteAction.CORRECT, 3)].midi_pitch == 67
    assert (NoteAction.RETRACT, 4) in by
    new = [e for e in events if e.action is NoteAction.ON]
    assert [(e.midi_pitch, e.onset_s) for e in new] == [(50, 1.5)]
    assert new[0].note_id >= REFINED_ID_BASE
    offs = {e.note_id: e.offset_s for e in events if e.action is NoteAction.OFF}
    assert set(offs) == {1, 2, 3, new[0].note_id}
    assert abs(offs[1] - 1.1) < 0.03 and abs(offs[new[0].note_id] - 1.9) < 0.03


def test_overflow_skips_windows_without_retracting() -> None:
    class SlowPool(ScorePool):
        def __init__(self) -> None:
            super().__init__()
            self.futs: list[Future[tuple[np.ndarray, np.ndarray]]] = []

        immediate = False

        def submit(self, window: np.ndarray) -> Future[tuple[np.ndarray, np.ndarray]]:
            done = super().submit(window)
            if self.immediate:
                return done
            fut: Future[tuple[np.ndarray, np.ndarray]] = Future()
            self.futs.append(fut)
            fut.result_value = done.result()  # type: ignore[attr-defined]
            return fut

    pool = SlowPool()
    tier = RefinedTier(pool=pool, max_pending=1)  # type: ignore[arg-type]
    events = tier.add(
        np.zeros(int(6 * RATE), np.float32), [0.5, 1.0], (_on(1, 60, 0.5), _on(2, 72, 1.0))
    )
    assert events == [] and tier.windows_skipped >= 2
    pool.immediate = True
    for f in pool.futs:
        f.set_result(f.result_value)  # type: ignore[attr-defined]
    events = tier.finish()
    # window 0 ran (confirm 60, retract 72 at 1.0 s lies in it); nothing retracted in skipped spans
    assert any(e.action is NoteAction.CONFIRM and e.note_id == 1 for e in events)
