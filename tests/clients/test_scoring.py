from pathlib import Path

import mir_eval
import numpy as np
import pytest

from clients.analysis_client import ChunkResultEvent, Note, StreamSummaryEvent
from clients.results import StreamResult
from clients.scoring import note_f_measure, onset_f_measure


@pytest.mark.parametrize("seed", range(20))
def test_matches_mir_eval(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = np.sort(rng.uniform(0, 10, 40))
    kept = ref[rng.random(40) < 0.8]
    est = np.sort(np.concatenate([kept + rng.normal(0, 0.03, kept.size), rng.uniform(0, 10, 10)]))
    ours = onset_f_measure(ref.tolist(), est.tolist())
    theirs = mir_eval.onset.f_measure(ref, est, window=0.05)
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_empty_inputs() -> None:
    assert onset_f_measure([], [1.0]) == (0.0, 0.0, 0.0)
    assert onset_f_measure([1.0], []) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("seed", range(10))
def test_note_f_measure_matches_mir_eval(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = [
        (float(t), int(p))
        for t, p in zip(rng.uniform(0, 10, 60), rng.integers(50, 60, 60), strict=True)
    ]
    est = [
        (max(0.0, t + float(rng.normal(0, 0.03))), p if rng.random() < 0.85 else p + 12)
        for t, p in ref
        if rng.random() < 0.8
    ]
    est += [
        (float(t), int(p))
        for t, p in zip(rng.uniform(0, 10, 8), rng.integers(50, 60, 8), strict=True)
    ]

    def intervals(notes: list[tuple[float, int]]) -> tuple[np.ndarray, np.ndarray]:
        iv = np.array([[t, t + 0.1] for t, _ in notes])
        return iv, mir_eval.util.midi_to_hz(np.array([p for _, p in notes], dtype=float))

    theirs = mir_eval.transcription.precision_recall_f1_overlap(
        *intervals(ref), *intervals(est), onset_tolerance=0.05, offset_ratio=None
    )
    f, p, r = note_f_measure(ref, est)
    np.testing.assert_allclose((p, r, f), theirs[:3], atol=1e-12)


def _note(nid: int, tier: str, action: str, pitch: int, on: float, off: float = 0.0) -> Note:
    return Note(nid, tier, action, pitch, on, off, 0.5, 0.9)


def test_prediction_files_apply_confirm_correct_retract(tmp_path: Path) -> None:
    r = StreamResult()
    chunk = [
        _note(1, "FAST", "ON", 60, 0.5),
        _note(2, "FAST", "ON", 65, 0.5),
        _note(3, "FAST", "ON", 72, 1.0),
        _note(1, "FAST", "OFF", 60, 0.5, 0.9),
    ]
    r.add(ChunkResultEvent(0, (), None, 1.0, None, 0.0, notes=tuple(chunk)))
    refined = (
        _note(1, "REFINED", "CONFIRM", 60, 0.5),
        _note(2, "REFINED", "CORRECT", 67, 0.5),
        _note(3, "REFINED", "RETRACT", 72, 1.0),
        _note(1 << 40, "REFINED", "ON", 48, 1.5),
        _note(1, "REFINED", "OFF", 60, 0.5, 1.1),
    )
    r.add(StreamSummaryEvent("s", 1, 0, 0, 0, 4, 2.0, refined))
    paths = r.write(tmp_path, "piece")
    assert [p.name for p in paths] == [
        "piece.onsets.txt",
        "piece.fast.notes.csv",
        "piece.notes.csv",
    ]
    fast = (tmp_path / "piece.fast.notes.csv").read_text().splitlines()
    assert fast == ["0.500000,0.600000,65", "0.500000,0.900000,60", "1.000000,1.100000,72"]
    final = (tmp_path / "piece.notes.csv").read_text().splitlines()
    assert final == ["0.500000,0.600000,67", "0.500000,1.100000,60", "1.500000,1.600000,48"]
