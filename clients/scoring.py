"""Onset F-measure with a tolerance window (same definition as mir_eval.onset.f_measure)."""

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
