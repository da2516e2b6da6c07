"""Offline check of the onset network's decisions on the held-out clips (never the corpus).

    python -m training.tune --data training/data --feats training/feats \
        [--model edge_server/dsp/models/notenet.npz]

Runs the shipped numpy inference and :class:`NetOnsetDecoder` over the validation clips'
precomputed features (clean and room-augmented copies), scores onsets with mir_eval as the
corpus scorer does (50 ms), grid-searches the onset threshold for the best mean of clean and
augmented F1 and measures the onset time offset: a quick look right after training. The
values that ship in ``edge_server/dsp/netonsets.py`` come from ``training.tune_notes``, which
streams the clips through the analyzer exactly as the server does (this offline path uses
other augmented copies and can differ by a threshold step where the F1 curve is flat).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import mir_eval
import numpy as np

from edge_server.dsp.analyzer import AnalyzerConfig
from edge_server.dsp.netonsets import DecisionParams, NetOnsetDecoder
from edge_server.dsp.notenet import NetOutput, NoteNet, NoteNetWeights
from training.features import with_odf


def merged_onsets(notes: list[list[float]], merge_s: float = 0.03) -> np.ndarray:
    out: list[float] = []
    for t in sorted(n[0] for n in notes):
        if not out or t - out[-1] > merge_s:
            out.append(t)
    return np.asarray(out)


def decode(
    out: NetOutput, short: np.ndarray, shift_s: float, params: DecisionParams
) -> tuple[np.ndarray, np.ndarray]:
    """Reported onset times and the end times of the firing hops, s."""
    cfg = AnalyzerConfig()
    d = NetOnsetDecoder(hop_s=cfg.hop_s, params=params).process(out, short)
    ends = (d.onset_frames + 1) * cfg.hop_s - shift_s
    return np.maximum(ends - params.onset_offset_s, 0), ends


def score(
    ref_notes: list[list[float]], onsets: np.ndarray, notes: np.ndarray
) -> tuple[float, float]:
    ref_on = merged_onsets(ref_notes)
    f_on = mir_eval.onset.f_measure(ref_on, np.sort(onsets), window=0.05)[0]
    ri = np.array([[n[0], n[0] + 0.1] for n in ref_notes]).reshape(-1, 2)
    rp = mir_eval.util.midi_to_hz(np.array([n[2] for n in ref_notes], dtype=float))
    ei = np.stack([notes[:, 0], notes[:, 0] + 0.1], axis=1) if len(notes) else np.zeros((0, 2))
    ep = mir_eval.util.midi_to_hz(notes[:, 1].astype(float)) if len(notes) else np.zeros(0)
    f_note = mir_eval.transcription.precision_recall_f1_overlap(
        ri, rp, ei, ep, onset_tolerance=0.05, offset_ratio=None
    )[2]
    return float(f_on), float(f_note)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("training/data"))
    ap.add_argument("--feats", type=Path, default=Path("training/feats"))
    ap.add_argument("--model", type=Path, default=Path("edge_server/dsp/models/notenet.npz"))
    a = ap.parse_args()
    w = NoteNetWeights(a.model)
    runs = []
    for f in sorted(a.feats.glob("*0.*.npz")):
        stem, copy = f.name.split(".")[:2]
        z = np.load(f)
        x = with_odf(z["x"].astype(np.float32))
        shift = float((1) * AnalyzerConfig().hop_s - z["frame_end_s"][0])
        out = NoteNet(weights=w).process(x)
        notes = json.loads((a.data / f"{stem}.json").read_text())["notes"]
        runs.append((copy, out, x[:, w.n_long : -1], shift, notes))
    print(f"{len(runs)} validation runs")
    base = DecisionParams()
    # onset time offset: median of (hop end at firing - true onset) over matched onsets
    lags = []
    for _, out, short, shift, notes in runs:
        _, fired_end = decode(out, short, shift, replace(base, onset_offset_s=0.0))
        ref = merged_onsets(notes)
        for m_ref, m_est in mir_eval.util.match_events(ref, fired_end, 0.05):
            lags.append(fired_end[m_est] - ref[m_ref])
    lag = float(np.median(lags))
    print(f"detection delay: median {lag * 1e3:.1f} ms, p95 {np.percentile(lags, 95) * 1e3:.1f} ms")
    base = replace(base, onset_offset_s=round(lag, 4))
    best = None
    for ot in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        params = replace(base, onset_threshold=ot)
        res: dict[str, list[float]] = {}
        for copy, out, short, shift, notes in runs:
            onsets, _ = decode(out, short, shift, params)
            f = mir_eval.onset.f_measure(merged_onsets(notes), np.sort(onsets), window=0.05)[0]
            res.setdefault(copy, []).append(float(f))
        m = {c: float(np.mean(v)) for c, v in res.items()}
        print(f"onset_thr {ot}: " + " ".join(f"copy{c}: {v:.3f}" for c, v in sorted(m.items())))
        obj = float(np.mean(list(m.values())))
        if best is None or obj > best[0]:
            best = (obj, params)
    assert best is not None
    print("offline best (the shipped values: training.tune_notes):", best[1])


if __name__ == "__main__":
    main()
