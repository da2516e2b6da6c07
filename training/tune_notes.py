"""Choose the fast tier's key threshold on held-out self-rendered clips (never the corpus).

    python -m training.tune_notes --data DIR/clips [--copies 2] [--piano NAME]

Streams every held-out clip (number ending in 0; clean, and room-augmented exactly as the
training copies) through :class:`edge_server.dsp.analyzer.StreamAnalyzer` with notes on, in
1024-sample chunks, keeping every key the classifier gives at least 0.05. Then, for each
threshold, scores onsets and fast notes with mir_eval as the corpus scorer does (50 ms,
onset-only) and prints the mean F1 per copy; the best mean is the ``NoteParams``
``key_threshold`` to ship. ``--piano`` restricts the clips to one piano (e.g. to see how a
piano the classifier never heard fares when it was held out of training).
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge_server.dsp.analyzer import AnalyzerConfig, StreamAnalyzer
from training.features import augment, read_wav
from training.tune import score

RATE_HZ = 44_100


def stream(x: np.ndarray) -> tuple[np.ndarray, list[tuple[float, int, float]]]:
    cfg = AnalyzerConfig()
    cfg = replace(cfg, notes=replace(cfg.notes, key_threshold=0.05))
    an = StreamAnalyzer(input_rate_hz=RATE_HZ, config=cfg, notes=True)
    onsets: list[float] = []
    notes: list[tuple[float, int, float]] = []
    for i in range(0, x.shape[0], 1024):
        b = an.process(x[i : i + 1024])
        onsets += b.onset_times_s.tolist()
        notes += [(n.onset_s, n.midi_pitch, n.confidence) for n in b.note_ons]
    return np.asarray(onsets), notes


def _one(args: tuple[Path, int]) -> tuple[int, list[list[float]], np.ndarray, list]:  # type: ignore[type-arg]
    wav, copy = args
    x = read_wav(wav)
    if copy:
        x = augment(x, np.random.default_rng([int(wav.stem), copy]))
    gt = json.loads(wav.with_suffix(".json").read_text())["notes"]
    onsets, notes = stream(x)
    return copy, gt, onsets, notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--piano", default="")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    wavs = [
        w
        for w in sorted(a.data.glob("*0.wav"))
        if a.piano in json.loads(w.with_suffix(".json").read_text())["piano"]
    ]
    jobs = [(w, k) for w in wavs for k in range(a.copies)]
    with ProcessPoolExecutor(a.jobs) as ex:
        runs = list(ex.map(_one, jobs))
    print(f"{len(wavs)} held-out clips x {a.copies} copies")
    best = None
    for thr in np.arange(0.2, 0.96, 0.05):
        res: dict[int, list[tuple[float, float]]] = {}
        for copy, gt, onsets, notes in runs:
            est = np.array([[t, p] for t, p, c in notes if c >= thr]).reshape(-1, 2)
            res.setdefault(copy, []).append(score(gt, onsets, est))
        m = {c: np.mean(v, axis=0) for c, v in res.items()}
        line = " ".join(f"copy{c}: onset {v[0]:.3f} note {v[1]:.3f}" for c, v in sorted(m.items()))
        print(f"key_threshold {thr:.2f}: {line}", flush=True)
        obj = float(np.mean([v[1] for v in m.values()]))
        if best is None or obj > best[0]:
            best = (obj, thr)
    assert best is not None
    print(f"best key_threshold {best[1]:.2f} (mean note F1 {best[0]:.3f})")


if __name__ == "__main__":
    main()
