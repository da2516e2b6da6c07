"""Choose the refined tier's thresholds on held-out self-rendered clips (never the corpus).

    python -m training.tune_refined --data training/data [--clips 30]

For each validation clip (clean, and one room-augmented copy made as in
:mod:`training.features`): streams it through :class:`StreamAnalyzer` (our onsets = the
anchors), runs Basic Pitch on the stitched windows once, then grid-searches
:class:`RefinedParams` by re-running only the decisions, scoring note F1 (onset-only, 50 ms)
with mir_eval. Prints the best parameters.
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge_server.dsp.analyzer import AnalyzerConfig, StreamAnalyzer
from edge_server.dsp.basicpitch import WindowStitcher, run_windows
from edge_server.dsp.refined import RefinedDecoder, RefinedParams
from training.features import augment, read_wav
from training.tune import score


def prepare(
    wav: Path, copy: int, cache: Path | None = None
) -> tuple[list[float], list[tuple[int, np.ndarray, np.ndarray]]]:
    """Our onsets (anchors) and Basic Pitch's stitched windows for one clip (posteriors cached:
    they do not depend on our network)."""
    x = read_wav(wav)
    if copy:
        x = augment(x, np.random.default_rng([int(wav.stem), copy]))
    an = StreamAnalyzer(input_rate_hz=44_100, config=AnalyzerConfig())
    onsets: list[float] = []
    parts = []
    for i in range(0, x.shape[0], 1024):
        b = an.process(x[i : i + 1024])
        onsets += b.onset_times_s.tolist()
        parts.append(b.samples)
    st = WindowStitcher()
    wins = st.push(np.concatenate(parts), final=True)
    path = None if cache is None else cache / f"{wav.stem}.{copy}.npz"
    if path is not None and path.exists():
        z = np.load(path)
        note, onset = z["note"], z["onset"]
    else:
        note, onset = run_windows(np.stack([w for _, w in wins]))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, note=note, onset=onset)
    return onsets, [(w, note[i], onset[i]) for i, (w, _) in enumerate(wins)]


def decide(
    onsets: list[float], posts: list[tuple[int, np.ndarray, np.ndarray]], params: RefinedParams
) -> np.ndarray:
    st = WindowStitcher()
    dec = RefinedDecoder(params=params)
    for i, t in enumerate(onsets):
        dec.add_anchor(i, t)
    notes = []
    for j, (w, note, onset) in enumerate(posts):
        got, _ = dec.push(st.stitch(w, note, onset), final=j == len(posts) - 1)
        notes += [[n.onset_s, n.midi_pitch] for n in got]
    return np.asarray(notes, dtype=np.float64).reshape(-1, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("training/data"))
    ap.add_argument("--clips", type=int, default=30)
    ap.add_argument("--cache", type=Path, default=None, help="keep Basic Pitch outputs here")
    ap.add_argument("--only-defaults", action="store_true", help="score RefinedParams() only")
    a = ap.parse_args()
    wavs = sorted(w for w in a.data.glob("*.wav") if w.stem.endswith("0"))[: a.clips]
    runs = []
    for w in wavs:
        notes = json.loads(w.with_suffix(".json").read_text())["notes"]
        for copy in (0, 1):
            onsets, posts = prepare(w, copy, a.cache)
            runs.append((copy, notes, onsets, posts))
    print(f"{len(runs)} runs prepared", flush=True)
    best = None
    grid = itertools.product(
        (0.5, 0.6, 0.7, 0.8), (0.4, 0.5, 0.6, 1.01), (0.15, 0.3), (0.6, 0.8, 1.01)
    )
    if a.only_defaults:
        d = RefinedParams()
        grid = iter([(d.onset_threshold, d.note_threshold, d.note_rise, d.orphan_threshold)])
    for on_t, note_t, rise, orphan in grid:
        params = replace(
            RefinedParams(),
            onset_threshold=on_t,
            note_threshold=note_t,
            note_rise=rise,
            orphan_threshold=orphan,
        )
        res: dict[int, list[float]] = {}
        for copy, notes, onsets, posts in runs:
            est = decide(onsets, posts, params)
            res.setdefault(copy, []).append(score(notes, np.asarray(onsets), est)[1])
        m = {c: float(np.mean(v)) for c, v in res.items()}
        obj = float(np.mean(list(m.values())))
        print(f"{on_t} {note_t} {rise} {orphan}: clean {m[0]:.3f} room {m[1]:.3f}", flush=True)
        if best is None or obj > best[0]:
            best = (obj, params)
    assert best is not None
    print("best:", best[1])


if __name__ == "__main__":
    main()
