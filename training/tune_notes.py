"""Choose the onset threshold, the onset time offset and the fast tier's key threshold on
held-out self-rendered clips (never the corpus), through the streaming code the server runs.

    python -m training.tune_notes --data DIR/clips [--copies 2] [--piano NAME]
        [--onset-thresholds 0.4,0.5,0.6,0.7,0.8]

Streams every held-out clip (number ending in 0; clean, and room-augmented exactly as the
training copies) through :class:`edge_server.dsp.analyzer.StreamAnalyzer` with notes on, in
1024-sample chunks, once per onset threshold, keeping every key the classifier gives at
least 0.05. Scores with mir_eval as the corpus scorer does (50 ms, onset-only):

1. per onset threshold, the mean onset F1 per copy; the best mean of the copies is the
   ``DecisionParams.onset_threshold`` to ship;
2. at that threshold, the detection delay (end of the firing hop minus the true onset,
   matched within 50 ms): its median is the ``onset_offset_s`` to ship (reported onset time
   = hop end - offset);
3. at that threshold, per key threshold, the mean note F1 per copy; the best mean is the
   ``NoteParams.key_threshold``.

``--piano`` restricts the clips to one piano (e.g. to see how a piano the classifier never
heard fares when it was held out of training). ``training.render --held-out`` renders just
these clips.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import mir_eval
import numpy as np

from edge_server.dsp.analyzer import AnalyzerConfig, StreamAnalyzer
from training.features import augment, read_wav
from training.tune import merged_onsets, score

RATE_HZ = 44_100


Notes = list[tuple[float, int, float]]


def stream(x: np.ndarray, *, onset_threshold: float) -> tuple[np.ndarray, np.ndarray, Notes]:
    """Reported onset times, firing-hop end times and (onset_s, pitch, confidence) notes."""
    cfg = AnalyzerConfig()
    cfg = replace(
        cfg,
        notes=replace(cfg.notes, key_threshold=0.05),
        decisions=replace(cfg.decisions, onset_threshold=onset_threshold),
    )
    an = StreamAnalyzer(input_rate_hz=RATE_HZ, config=cfg, notes=True)
    onsets: list[float] = []
    fired: list[float] = []
    notes: Notes = []
    for i in range(0, x.shape[0], 1024):
        b = an.process(x[i : i + 1024])
        onsets += b.onset_times_s.tolist()
        fired += b.onset_detected_at_s.tolist()
        notes += [(n.onset_s, n.midi_pitch, n.confidence) for n in b.note_ons]
    return np.asarray(onsets), np.asarray(fired), notes


Run = tuple[float, int, list[list[float]], np.ndarray, np.ndarray, Notes]


def _one(args: tuple[Path, int, float]) -> Run:
    wav, copy, thr = args
    x = read_wav(wav)
    if copy:
        x = augment(x, np.random.default_rng([int(wav.stem), copy]))
    gt = json.loads(wav.with_suffix(".json").read_text())["notes"]
    onsets, fired, notes = stream(x, onset_threshold=thr)
    return thr, copy, gt, onsets, fired, notes


def _mean_by_copy(rows: list[tuple[int, float]]) -> dict[int, float]:
    by: dict[int, list[float]] = {}
    for copy, v in rows:
        by.setdefault(copy, []).append(v)
    return {c: float(np.mean(v)) for c, v in sorted(by.items())}


def _line(m: dict[int, float]) -> str:
    return (
        " ".join(f"copy{c}: {v:.3f}" for c, v in m.items()) + f" mean {np.mean([*m.values()]):.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--piano", default="")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--onset-thresholds", default="0.4,0.5,0.6,0.7,0.8")
    a = ap.parse_args()
    wavs = [
        w
        for w in sorted(a.data.glob("*0.wav"))
        if a.piano in json.loads(w.with_suffix(".json").read_text())["piano"]
    ]
    thresholds = [float(t) for t in a.onset_thresholds.split(",")]
    jobs = [(w, k, t) for t in thresholds for w in wavs for k in range(a.copies)]
    with ProcessPoolExecutor(a.jobs) as ex:
        runs = list(ex.map(_one, jobs, chunksize=4))
    print(f"{len(wavs)} held-out clips x {a.copies} copies")
    best_on = None
    for t in thresholds:
        m = _mean_by_copy(
            [(c, score(gt, on, np.zeros((0, 2)))[0]) for tt, c, gt, on, _, _ in runs if tt == t]
        )
        print(f"onset_threshold {t:.2f}: onset F1 {_line(m)}", flush=True)
        mean = float(np.mean([*m.values()]))
        if best_on is None or mean > best_on[0]:
            best_on = (mean, t)
    assert best_on is not None
    thr_on = best_on[1]
    print(f"best onset_threshold {thr_on:.2f} (mean onset F1 {best_on[0]:.3f})")
    runs_at = [(c, gt, on, fired, notes) for t, c, gt, on, fired, notes in runs if t == thr_on]
    lags = []
    for _, gt, _, fired, _ in runs_at:
        ref = merged_onsets(gt)
        lags += [fired[e] - ref[r] for r, e in mir_eval.util.match_events(ref, fired, 0.05)]
    print(
        f"firing hop end - true onset: median {np.median(lags) * 1e3:.1f} ms, "
        f"p95 {np.percentile(lags, 95) * 1e3:.1f} ms -> onset_offset_s {np.median(lags):.4f}"
    )
    best = None
    for thr in np.arange(0.2, 0.96, 0.05):
        res: dict[int, list[tuple[float, float]]] = {}
        for copy, gt, onsets, _, notes in runs_at:
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
