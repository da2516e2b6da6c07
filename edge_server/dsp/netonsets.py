"""Causal onset decisions on the note network's onset probability.

An onset fires when the probability crosses ``onset_threshold`` upwards, at least
``refractory_s`` after the previous one, and the short frame's bands also rose in that hop
or the one before (the network alone sometimes echoes a strong strike ~10 hops later, where
nothing rises). When the rise comes a little after the crossing, the onset fires at the first
hop of the same above-threshold run, up to ``gate_wait_hops`` later, where it does (measured
on held-out rendered clips: onset F1 0.888 -> 0.897 clean).

The threshold adapts to recent history in two ways. A crossing only counts once the
probability has fallen below ``onset_threshold - rearm_margin`` since the last onset (a
Schmitt trigger: a probability wobbling around the threshold in the middle of a note fires
once, not at every wobble). And for ``adapt_window_s`` after an onset of strength ``s`` the
threshold is ``max(onset_threshold, adapt_ratio * s)``: a strong strike's ringing needs more
to fire again than silence does. Which keys an onset struck is decided later by
:mod:`.notedecoder`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .notenet import NetOutput
from .readonly import EMPTY_F32, EMPTY_I64

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, kw_only=True)
class DecisionParams:
    """Onset thresholds, chosen on held-out self-rendered clips by ``training.tune_notes``
    (``make tune-thresholds``: the 96 clips numbered ...0, clean and in a synthetic room,
    streamed through the analyzer; mean onset F1 of the two). With the GRU network
    (2026-12-07): threshold 0.30 / **0.35** / 0.40 / 0.50 -> 0.889 / **0.891** / 0.891 / 0.886
    (clean 0.928 / 0.931 / 0.932 / 0.932, room 0.850 / 0.851 / 0.849 / 0.840); the
    reported-time offset = the median firing delay there, 9.0 ms (re-measured with the
    settings below, which ship). (The network before it, without
    the GRU, chose 0.5 and 9.6 ms the same way: 0.843 / 0.850 / 0.849 / 0.842 at 0.4 / 0.5 /
    0.6 / 0.7.) Gate 3 with a 45 ms refractory gave 0.854 on 60 of those clips with the older
    network, but gate 3 lets the network's echo of a strong synthetic strike through (+85 ms,
    in ``tests/dsp/test_analyzer.py``); a 45 ms refractory alone gave 0.850: not taken.

    The adaptive threshold and the short-band gate, re-chosen for the GRU network (2026-12-07,
    same clips plus a copy through Opus 64 kbit/s: ``training.tune_decisions`` replays this
    decoder on what the analyzer's decisions saw when each copy was streamed; mean onset F1 of
    the clean, room and Opus copies): 0.8999 as shipped before (gate 5, no adaptive rule); gate
    3 / 4 alone 0.9058 / 0.9064; margin 0.2, ratio 0.5, window 0.35 s at gate 3 / 4 / 5 0.9143
    / 0.9132 / 0.9049; the grid's best, **0.9146** (0.9461 clean, 0.8640 room, 0.9336 Opus), is
    gate 3, margin 0.2, ratio 0.6, window 0.35 s, on a plateau (0.9134-0.9146 for margin
    0.15-0.2, ratio 0.5-0.6, window 0.2-0.35 s at gate 3). The gate was 5 since it was chosen for
    the network before the GRU (above), which echoed strong strikes.

    Attributes
    ----------
    onset_threshold : float
        Onset probability that fires an onset, ``(0, 1)``.
    refractory_s : float
        Minimum time between two onsets, s.
    min_short_flux : float
        An onset also needs the short frame's bands to rise: the sum of their positive
        changes (log10 units) in the firing hop or the one before must reach this (real
        attacks rise by 10-100, a held tone's short bands wobble by up to ~3; with the
        network before the GRU, held-out F1 for gate 0 / 1.5 / 3 / 5 / 8: 0.849 / 0.850 / 0.851 /
        0.848 / 0.792 at 30 ms refractory, and 3 let that network's echo of a strong strike
        through; with the GRU network and the adaptive threshold, 3 is best, above).
    onset_offset_s : float
        Reported onset time = end of the firing hop minus this, s.
    gate_wait_hops : int
        How many hops after the crossing the short-band rise may still come.
    rearm_margin : float
        After an onset, the next crossing counts only once the probability has been below
        ``onset_threshold - rearm_margin``, ``[0, onset_threshold]`` (0: every crossing).
    adapt_window_s : float
        How long after an onset the raised threshold holds, s (0: never raised).
    adapt_ratio : float
        The raised threshold: this times the last onset's strength, ``[0, 1]``.
    """

    onset_threshold: float = 0.35
    refractory_s: float = 0.03
    min_short_flux: float = 3.0
    onset_offset_s: float = 0.0088
    gate_wait_hops: int = 2
    rearm_margin: float = 0.2
    adapt_window_s: float = 0.35
    adapt_ratio: float = 0.6

    def __post_init__(self) -> None:
        checks = (
            ("onset_threshold", self.onset_threshold, 0.0, 1.0),
            ("refractory_s", self.refractory_s, 0.0, 1.0),
            ("min_short_flux", self.min_short_flux, 0.0, 1e3),
            ("onset_offset_s", self.onset_offset_s, 0.0, 0.1),
            ("gate_wait_hops", self.gate_wait_hops, 0, 64),
            ("rearm_margin", self.rearm_margin, 0.0, self.onset_threshold),
            ("adapt_window_s", self.adapt_window_s, 0.0, 5.0),
            ("adapt_ratio", self.adapt_ratio, 0.0, 1.0),
        )
        for name, value, lo, hi in checks:
            if not lo <= value <= hi:
                raise ValueError(f"decisions.{name} must be in [{lo:g}, {hi:g}], not {value}")


@dataclass(frozen=True)
class OnsetDecisions:
    """What one block of hops decided.

    Attributes
    ----------
    onset_frames : ndarray, shape (n_onsets,), int64
        Absolute hop indices that fired an onset.
    onset_strengths : ndarray, shape (n_onsets,), float32
        Onset probability at those hops, ``[0, 1]``.
    """

    onset_frames: npt.NDArray[np.int64]
    onset_strengths: F32


class NetOnsetDecoder:
    """Per-stream onset decision state.

    Parameters
    ----------
    hop_s : float
        Hop duration, s.
    params : DecisionParams
        Thresholds.
    """

    def __init__(self, *, hop_s: float, params: DecisionParams) -> None:
        self.p = params
        self._refr_n = max(1, round(params.refractory_s / hop_s))
        self._adapt_n = round(params.adapt_window_s / hop_s)
        self._rearm_below = params.onset_threshold - params.rearm_margin
        self._frame = 0
        self._prev_onset_p = 0.0
        self._prev_rise = 0.0
        self._prev_short: F32 = np.zeros(0, dtype=np.float32)
        self._last_onset = -(10**9)
        self._last_strength = 0.0
        self._armed = -1  # hops since the crossing of a run that has not fired yet (-1: none)
        self._rearmed = True  # the probability fell below _rearm_below since the last onset

    def state(self) -> dict[str, npt.NDArray[np.generic]]:
        """Decision state as arrays (int64 counters, float64 last values, float32 bands)."""
        counts = [self._frame, self._last_onset, self._armed, int(self._rearmed)]
        last = [self._prev_onset_p, self._prev_rise, self._last_strength]
        return {
            "counts": np.array(counts, dtype=np.int64),
            "prev_p": np.array(last, dtype=np.float64),
            "prev_short": self._prev_short.copy(),
        }

    def restore(self, state: dict[str, npt.NDArray[np.generic]]) -> None:
        """Restore :meth:`state`'s arrays (also those of a version before the adaptive
        threshold, which had 3 counters and 2 last values: re-armed, no raised threshold)."""
        counts = [int(v) for v in state["counts"]] + [1]
        last = [float(v) for v in state["prev_p"]] + [0.0]
        self._frame, self._last_onset, self._armed, rearmed = counts[:4]
        self._rearmed = bool(rearmed)
        self._prev_onset_p, self._prev_rise, self._last_strength = last[:3]
        self._prev_short = np.asarray(state["prev_short"], dtype=np.float32).copy()

    def process(self, out: NetOutput, short_bands: F32) -> OnsetDecisions:
        """Decide on the next hops.

        Parameters
        ----------
        out : NetOutput
            The network's outputs for these hops.
        short_bands : ndarray, shape (n_frames, n_short_bands), float32
            The short frame's log bands (network inputs) of the same hops.
        """
        return decide_onsets_many([self], out.stream_axis(), short_bands[None])[0]

    def _skip_quiet(
        self, n: int, *, last_rise: float, last_p: float, lowest_p: float
    ) -> OnsetDecisions:
        """What :meth:`_decide` does with ``n >= 1`` hops all under the threshold: nothing
        fires; disarm, re-arm if the probability fell low enough, carry the last hop's values."""
        self._armed = -1
        if lowest_p < self._rearm_below:
            self._rearmed = True
        self._prev_rise = last_rise
        self._prev_onset_p = last_p
        self._frame += n
        return _NO_ONSETS

    def _decide(self, out: NetOutput, rise: list[float]) -> OnsetDecisions:
        p = self.p
        onsets: list[int] = []
        strengths: list[float] = []
        for i, v in enumerate(out.onset.tolist()):
            t = self._frame
            r = rise[i]
            gate = max(r, self._prev_rise)
            self._prev_rise = r
            if v < self._rearm_below:
                self._rearmed = True
            thr = p.onset_threshold
            if t - self._last_onset <= self._adapt_n:
                thr = max(thr, p.adapt_ratio * self._last_strength)
            if v < thr:
                self._armed = -1
            elif self._prev_onset_p < thr and self._rearmed:
                self._armed = 0  # crossing: this run may fire
            elif self._armed >= 0:
                self._armed += 1
            if (
                0 <= self._armed <= p.gate_wait_hops
                and t - self._last_onset >= self._refr_n
                and gate >= p.min_short_flux
            ):
                onsets.append(t)
                strengths.append(v)
                self._last_onset = t
                self._last_strength = v
                self._armed = -1
                self._rearmed = False
            self._prev_onset_p = v
            self._frame += 1
        if not onsets:  # most blocks: one shared read-only empty result
            return _NO_ONSETS
        return OnsetDecisions(
            onset_frames=np.asarray(onsets, dtype=np.int64),
            onset_strengths=np.asarray(strengths, dtype=np.float32),
        )


_NO_ONSETS = OnsetDecisions(
    onset_frames=EMPTY_I64,
    onset_strengths=EMPTY_F32,
)


def decide_onsets_many(
    decoders: Sequence[NetOnsetDecoder], out: NetOutput, short_bands: F32
) -> list[OnsetDecisions]:
    """Onset decisions for several streams' next hops (same params, same hop count).

    The short-band rise is computed once for all streams; the per-hop logic then runs per
    stream.

    Parameters
    ----------
    decoders : sequence of NetOnsetDecoder
        One per stream.
    out : NetOutput
        Batched network outputs, leading axis streams (see ``notenet.process_many``).
    short_bands : ndarray, shape (n_streams, n_frames, n_short_bands), float32
        Each stream's short-frame log bands of the same hops.
    """
    bn, n = int(short_bands.shape[0]), int(short_bands.shape[1])
    prev = np.empty((bn, 1, short_bands.shape[2]), dtype=np.float32)
    for b, d in enumerate(decoders):
        prev[b, 0] = d._prev_short if d._prev_short.size else short_bands[b, 0]
        if n:
            d._prev_short = short_bands[b, -1].copy()
    rows = np.concatenate((prev, short_bands), axis=1)
    rise = np.maximum(np.diff(rows, axis=1), 0.0).sum(axis=2).tolist()
    if not n or not decoders:
        return [d._decide(out.stream(b), rise[b]) for b, d in enumerate(decoders)]
    # most blocks of most streams stay under the threshold throughout: nothing can fire, and
    # the per-hop walk would only disarm and carry the last values (done here without it)
    loud: list[bool] = (out.onset.max(axis=1) >= decoders[0].p.onset_threshold).tolist()
    last_p = out.onset[:, -1].tolist()
    lowest = out.onset.min(axis=1).tolist()
    return [
        d._decide(out.stream(b), rise[b])
        if loud[b]
        else d._skip_quiet(n, last_rise=rise[b][-1], last_p=last_p[b], lowest_p=lowest[b])
        for b, d in enumerate(decoders)
    ]
