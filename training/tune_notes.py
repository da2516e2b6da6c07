"""Choose the onset threshold, the onset time offset and the fast tier's key threshold on
held-out self-rendered clips (never the corpus), through the streaming code the server runs.

    python -m training.tune_notes --data DIR/clips [--copies 2] [--piano NAME]
        [--onset-thresholds 0.4,0.5,0.6,0.7,0.8]

Streams every held-out clip (number ending in 0; clean, room-augmented exactly as the
training copies, and with ``--copies 3`` through Opus at 64 kbit/s in 20 ms frames as
``training.tune_decisions``'s copy 2) through
:class:`edge_server.dsp.analyzer.StreamAnalyzer` with notes on, in 1024-sample chunks
(the Opus copy in 20 ms frames), once per onset threshold, keeping every key the classifier
gives at least 0.05. Scores with mir_eval as the corpus scorer does (50 ms, onset-only):

1. per onset threshold, the mean onset F1 per copy; the best mean of the copies is the
   ``DecisionParams.onset_threshold`` to ship;
2. at that threshold, the detection delay (end of the firing hop minus the true onset,
   matched within 50 ms): its median is the ``onset_offset_s`` to ship (reported onset time
   = hop end - offset);
3. at that threshold, per key threshold, the mean note F1 per copy; the best mean is the
   ``NoteParams.key_threshold``;
4. at that threshold, per ``NoteParams.onset_confirm_threshold`` (an onset whose strongest
   key the classifier gives less is withdrawn), the mean onset F1 per copy; the best mean is
   the one to ship. The clips are streamed with it at 1, so that every onset's strongest key
   probability comes back with its retraction (those at 1.0 are never withdrawn).

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
from training.tune_decisions import OPUS_COPY, OPUS_FRAME, OPUS_RATE_HZ, opus_round_trip

RATE_HZ = 44_100


Notes = list[tuple[float, int, float]]
#: onset time -> the strongest key probability the classifier gave it (< 1)
KeyProbs = dict[float, float]


def stream(
    x: np.ndarray, *, onset_threshold: float, input_rate_hz: int = RATE_HZ, chunk: int = 1024
) -> tuple[np.ndarray, np.ndarray, Notes, KeyProbs]:
    """Reported onset times, firing-hop end times, (onset_s, pitch, confidence) notes and the
    strongest key probability of each onset the classifier did not give 1.0."""
    cfg = AnalyzerConfig()
    cfg = replace(
        cfg,
        notes=replace(cfg.notes, key_threshold=0.05, onset_confirm_threshold=1.0),
        decisions=replace(cfg.decisions, onset_threshold=onset_threshold),
    )
    an = StreamAnalyzer(input_rate_hz=input_rate_hz, config=cfg, notes=True)
    onsets: list[float] = []
    fired: list[float] = []
    notes: Notes = []
    key_prob: KeyProbs = {}
    for i in range(0, x.shape[0], chunk):  # < 5 hops: an onset is never withdrawn in its block
        b = an.process(x[i : i + chunk])
        onsets += b.onset_times_s.tolist()
        fired += b.onset_detected_at_s.tolist()
        notes += [(n.onset_s, n.midi_pitch, n.confidence) for n in b.note_ons]
        key_prob.update((r.onset_s, r.key_prob) for r in b.onset_retractions)
    return np.asarray(onsets), np.asarray(fired), notes, key_prob


Run = tuple[float, int, list[list[float]], np.ndarray, np.ndarray, Notes, KeyProbs]


def _one(args: tuple[Path, int, float]) -> Run:
    wav, copy, thr = args
    x = read_wav(wav)
    rate_hz, chunk = RATE_HZ, 1024
    if copy == OPUS_COPY:
        x, rate_hz, chunk = opus_round_trip(x), OPUS_RATE_HZ, OPUS_FRAME
    elif copy:
        x = augment(x, np.random.default_rng([int(wav.stem), copy]))
    gt = json.loads(wav.with_suffix(".json").read_text())["notes"]
    onsets, fired, notes, key_prob = stream(
        x, onset_threshold=thr, input_rate_hz=rate_hz, chunk=chunk
    )
    return thr, copy, gt, onsets, fired, notes, key_prob


def _mean_by_copy(rows: list[tuple[int, float]]) -> dict[int, float]:
    by: dict[int, list[float]] = {}
    for copy, v in rows:
        by.setdefault(copy, []).append(v)
    return {c: float(np.mean(v)) for c, v in sorted(by.items())}


def _line(m: dict[int, float], digits: int = 3) -> str:
    mean = float(np.mean([*m.values()]))
    return " ".join(f"copy{c}: {v:.{digits}f}" for c, v in m.items()) + f" mean {mean:.{digits}f}"


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
            [(c, score(gt, on, np.zeros((0, 2)))[0]) for tt, c, gt, on, _, _, _ in runs if tt == t]
        )
        print(f"onset_threshold {t:.2f}: onset F1 {_line(m)}", flush=True)
        mean = float(np.mean([*m.values()]))
        if best_on is None or mean > best_on[0]:
            best_on = (mean, t)
    assert best_on is not None
    thr_on = best_on[1]
    print(f"best onset_threshold {thr_on:.2f} (mean onset F1 {best_on[0]:.3f})")
    runs_at = [(c, gt, on, fired, notes) for t, c, gt, on, fired, notes, _ in runs if t == thr_on]
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
    best_c = None
    for conf in (0.0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2):
        rows = []
        for t, c, gt, on, _, _, kp in runs:
            if t == thr_on:
                keep = [x for x in on.tolist() if kp.get(x, 1.0) >= conf]
                rows.append((c, score(gt, np.asarray(keep), np.zeros((0, 2)))[0]))
        m = _mean_by_copy(rows)
        print(f"onset_confirm_threshold {conf:.2f}: onset F1 {_line(m, 4)}", flush=True)
        mean = float(np.mean([*m.values()]))
        if best_c is None or mean > best_c[0]:
            best_c = (mean, conf)
    assert best_c is not None
    print(f"best onset_confirm_threshold {best_c[1]:.2f} (mean onset F1 {best_c[0]:.4f})")


if __name__ == "__main__":
    main()
