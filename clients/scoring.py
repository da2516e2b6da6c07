"""Onset and note F-measures with a tolerance window (the definitions of mir_eval's
``onset.f_measure`` and of note onset-only ``precision_recall_f1_overlap``)."""

from __future__ import annotations

from collections.abc import Sequence


def onset_f_measure(
    reference_s: Sequence[float], estimated_s: Sequence[float], *, window_s: float = 0.05
) -> tuple[float, float, float]:
    """(F, precision, recall). Maximum one-to-one matching within ``window_s``; on a line the
    greedy left-to-right matching is maximal."""
    ref = sorted(reference_s)
    est = sorted(estimated_s)
    if not ref or not est:
        return 0.0, 0.0, 0.0
    i = j = matched = 0
    while i < len(ref) and j < len(est):
        d = est[j] - ref[i]
        if abs(d) <= window_s:
            matched += 1
            i += 1
            j += 1
        elif d < 0:
            j += 1
        else:
            i += 1
    p, r = matched / len(est), matched / len(ref)
    f = 0.0 if matched == 0 else 2 * p * r / (p + r)
    return f, p, r


def note_f_measure(
    reference: Sequence[tuple[float, int]],
    estimated: Sequence[tuple[float, int]],
    *,
    window_s: float = 0.05,
) -> tuple[float, float, float]:
    """(F, precision, recall) of ``(onset_s, midi_pitch)`` notes: a match is the same pitch with
    onsets within ``window_s``, one-to-one (per pitch the greedy matching is maximal)."""
    if not reference or not estimated:
        return 0.0, 0.0, 0.0
    matched = 0
    for pitch in {p for _, p in reference}:
        ref_t = [t for t, q in reference if q == pitch]
        est_t = [t for t, q in estimated if q == pitch]
        if est_t:
            _, _, rec = onset_f_measure(ref_t, est_t, window_s=window_s)
            matched += round(rec * len(ref_t))
    p, r = matched / len(estimated), matched / len(reference)
    f = 0.0 if matched == 0 else 2 * p * r / (p + r)
    return f, p, r
