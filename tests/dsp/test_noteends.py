"""The note-end rule on synthetic levels: known answers and a hop-by-hop reference."""

from __future__ import annotations

import numpy as np
import pytest

from edge_server.dsp import noteends
from edge_server.dsp.noteends import level_ends

RULE = {"off_drop": 1.0, "off_floor": 0.25, "off_hops": 3}


def _reference(levels, rows, n_hops, keys, peak, count):  # type: ignore[no-untyped-def]
    """The rule as written: one note, one hop at a time."""
    ended, peaks, counts = [], [], []
    for r, n, k, pk, c in zip(rows, n_hops, keys, peak, count, strict=True):
        end = -1
        for i in range(n):
            v = float(levels[r + i, k])
            pk = max(pk, v)
            c = c + 1 if (v < pk - RULE["off_drop"] or v < RULE["off_floor"]) else 0.0
            if c >= RULE["off_hops"]:
                end = i
                break
        ended.append(end)
        peaks.append(pk)
        counts.append(c)
    return np.asarray(ended), np.asarray(peaks), np.asarray(counts)


def _one(levels: np.ndarray, key: int, peak: float, count: float, n: int | None = None):  # type: ignore[no-untyped-def]
    n = levels.shape[0] if n is None else n
    return level_ends(
        levels, rows=np.array([0]), n_hops=np.array([n]), keys=np.array([key]),
        peak=np.array([peak]), count=np.array([count]), **RULE,
    )  # fmt: skip


def test_a_decay_ends_the_note_at_its_third_hop_below_the_peak() -> None:
    lv = np.zeros((8, 88), np.float32)
    lv[:, 40] = [3.0, 2.9, 1.9, 1.8, 1.7, 1.6, 1.5, 1.4]  # 1.0 below the 3.0 peak from hop 2
    ended, _, _ = _one(lv, 40, -1.0, 0.0)
    assert ended.tolist() == [4]


def test_a_run_carried_from_the_last_block_ends_the_note_at_once() -> None:
    lv = np.full((4, 88), 0.1, np.float32)  # under the floor
    ended, _, _ = _one(lv, 10, 2.0, 2.0)
    assert ended.tolist() == [0]


def test_a_held_note_keeps_sounding_and_its_state_carries_over() -> None:
    lv = np.zeros((4, 88), np.float32)
    lv[:, 5] = [2.0, 2.5, 2.4, 2.45]
    ended, peak, count = _one(lv, 5, 1.0, 0.0)
    assert (ended.tolist(), peak.tolist(), count.tolist()) == ([-1], [2.5], [0.0])


def test_hops_past_a_notes_own_count_are_not_checked() -> None:
    lv = np.zeros((6, 88), np.float32)
    lv[:2, 7] = 2.0  # silent from hop 2 on, but only 2 hops belong to this note
    ended, peak, count = _one(lv, 7, 2.0, 0.0, n=2)
    assert (ended.tolist(), peak.tolist(), count.tolist()) == ([-1], [2.0], [0.0])


@pytest.mark.parametrize("loop_max", [0, 10**9], ids=["arrays", "loop"])
def test_random_notes_match_the_hop_by_hop_rule(
    loop_max: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both implementations (arrays for many notes, a loop for a few) against the rule."""
    monkeypatch.setattr(noteends, "LOOP_MAX_NOTE_HOPS", loop_max)
    rng = np.random.default_rng(7)
    for _ in range(50):
        n_notes = int(rng.integers(1, 30))
        levels = (rng.random((40, 88)) * 3).astype(np.float32)
        n_hops = rng.integers(1, 9, n_notes)
        rows = rng.integers(0, 40 - 8, n_notes)
        keys = rng.integers(0, 88, n_notes)
        peak = rng.random(n_notes) * 3
        count = rng.integers(0, 3, n_notes).astype(np.float64)
        got = level_ends(
            levels, rows=rows, n_hops=n_hops, keys=keys, peak=peak, count=count, **RULE
        )
        want = _reference(levels, rows, n_hops, keys, peak, count)
        alive = want[0] < 0
        assert got[0].tolist() == want[0].tolist()
        np.testing.assert_array_equal(got[1][alive], want[1][alive])
        np.testing.assert_array_equal(got[2][alive], want[2][alive])
