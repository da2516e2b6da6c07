"""Choose the onset decisions' adaptive-threshold settings on held-out self-rendered clips
(never the corpus): stream each clip once, then replay the shipped decoder on what it saw.

    python -m training.tune_decisions --data DIR/clips [--copies 3] [--jobs 2]

Each held-out clip (number ending in 0) is streamed once in each of three copies: clean
(copy 0), room-augmented exactly as the training copies (copy 1), and the clean clip through
Opus at 64 kbit/s as a WebRTC or Opus gRPC client sends it (copy 2: 48 kHz, 20 ms frames,
decoded with libopus as the server decodes it). Each copy is streamed once through
:class:`edge_server.dsp.analyzer.StreamAnalyzer` (1024-sample chunks; the Opus copy in 20 ms
frames), recording what the onset decisions receive: the network's per-hop outputs
and the short-frame bands. Those are then run through
:class:`edge_server.dsp.netonsets.NetOnsetDecoder` (the server's own decision code) for every
``min_short_flux`` x ``rearm_margin`` x ``adapt_ratio`` x ``adapt_window_s`` in the grid, at
the shipped onset threshold and offset, and scored with mir_eval as the corpus scorer does
(50 ms): the mean onset F1 per copy, and their mean, which is what a choice may use.
For the best setting it then says why the true onsets it misses are missed
(:func:`miss_causes`): the network's probability never reached the threshold, or it did and a
decision rule held the onset back, or a reported onset nearby was matched to another true
onset. That tells whether better decisions or a better network is the next step.
``training.tune_notes`` then streams the chosen setting end to end (onsets, note F1, the
firing delay).
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import mir_eval
import numpy as np

import edge_server.dsp.analyzer as analyzer_mod
from clients.opus import FRAME_MS, OPUS_RATE_HZ, encode_opus
from clients.wav import WavAudio
from edge_server.dsp.analyzer import AnalyzerConfig, StreamAnalyzer
from edge_server.dsp.netonsets import DecisionParams, NetOnsetDecoder, OnsetDecisions
from edge_server.dsp.notenet import NetOutput
from edge_server.pipeline.opus_decode import OpusPacketDecoder
from training.features import RATE_HZ, augment, read_wav
from training.tune import decode, merged_onsets

OPUS_COPY = 2
OPUS_FRAME = OPUS_RATE_HZ * FRAME_MS // 1000  # samples per packet


@dataclass(frozen=True)
class Trace:
    copy: int
    notes: list[list[float]]
    onset: np.ndarray  # (n_hops,) float32, the network's onset probability
    short: np.ndarray  # (n_hops, n_short_bands) float32
    delay_s: float  # the analyzer's delay: hop f ends at (f + 1) * hop_s - delay_s


def record(args: tuple[Path, int]) -> Trace:
    """Stream one clip copy; keep what the onset decisions were given."""
    wav, copy = args
    x = read_wav(wav)
    rate_hz, chunk = RATE_HZ, 1024
    if copy == OPUS_COPY:
        x, rate_hz, chunk = opus_round_trip(x), OPUS_RATE_HZ, OPUS_FRAME
    elif copy:
        x = augment(x, np.random.default_rng([int(wav.stem), copy]))
    onset: list[np.ndarray] = []
    short: list[np.ndarray] = []
    real = analyzer_mod.decide_onsets_many

    def spy(
        decoders: Sequence[NetOnsetDecoder], out: NetOutput, short_bands: np.ndarray
    ) -> list[OnsetDecisions]:
        onset.append(out.onset[0].copy())
        short.append(short_bands[0].copy())
        return real(decoders, out, short_bands)

    analyzer_mod.decide_onsets_many = spy
    try:
        an = StreamAnalyzer(input_rate_hz=rate_hz, config=AnalyzerConfig(), notes=False)
        for i in range(0, x.shape[0], chunk):
            an.process(x[i : i + chunk])
    finally:
        analyzer_mod.decide_onsets_many = real
    return Trace(
        copy=copy,
        notes=json.loads(wav.with_suffix(".json").read_text())["notes"],
        onset=np.concatenate(onset),
        short=np.concatenate(short),
        delay_s=an.delay_s,
    )


def opus_round_trip(x: np.ndarray, *, bitrate_bps: int = 64_000) -> np.ndarray:
    """``x`` (44.1 kHz mono float32) encoded as a client encodes it and decoded by the
    server's decoder: 48 kHz mono float32."""
    pcm = (np.clip(x, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    audio = WavAudio(data=pcm, encoding="PCM16_LE", sample_rate_hz=RATE_HZ, channels=1)
    dec = OpusPacketDecoder(sample_rate_hz=OPUS_RATE_HZ, channels=1)
    packets = encode_opus(audio, bitrate_bps=bitrate_bps).packets
    return np.concatenate([dec.decode(p) for p in packets])


def onset_f1(traces: list[Trace], params: DecisionParams) -> dict[int, float]:
    """Mean onset F1 per copy with these decisions."""
    by: dict[int, list[float]] = {}
    for t in traces:
        out = NetOutput(onset=t.onset, velocity=np.zeros_like(t.onset))  # velocity: unread
        onsets, _ = decode(out, t.short, t.delay_s, params)
        f = mir_eval.onset.f_measure(merged_onsets(t.notes), np.sort(onsets), window=0.05)[0]
        by.setdefault(t.copy, []).append(float(f))
    return {c: float(np.mean(v)) for c, v in sorted(by.items())}


MISS_CAUSES = (
    "network: peak under threshold - rearm_margin",
    "network: peak under threshold",
    "decisions: crossed, held back",
    "taken: a reported onset nearby matched another",
)


def miss_causes(trace: Trace, params: DecisionParams) -> dict[str, int]:
    """Why each true onset (notes within 30 ms merged) that ``params`` misses is missed.

    A miss is a true onset mir_eval matches to no reported onset (50 ms). The hops that could
    report it are those whose reported time (end of the hop minus ``onset_offset_s``) lies
    within 50 ms of it. If a reported onset lies within 50 ms, it was matched to another true
    onset (two onsets closer than the decisions' refractory, or a neighbour's better match):
    ``taken``. Otherwise, if the network's onset probability stayed under
    ``onset_threshold`` over those hops it is the network's miss, split by its peak (under
    ``onset_threshold - rearm_margin``: not even close); if it reached the threshold, a
    decision rule (short-band gate, refractory, re-arm margin, raised threshold) held the
    onset back.
    """
    hop_s = AnalyzerConfig().hop_s
    out = NetOutput(onset=trace.onset, velocity=np.zeros_like(trace.onset))
    onsets, _ = decode(out, trace.short, trace.delay_s, params)
    ref = merged_onsets(trace.notes)
    matched = {r for r, _ in mir_eval.util.match_events(ref, onsets, 0.05)}
    counts = dict.fromkeys(MISS_CAUSES, 0)
    # reported time of hop h: (h + 1) * hop_s - delay_s - onset_offset_s
    shift_s = trace.delay_s + params.onset_offset_s
    for i, t in enumerate(ref):
        if i in matched:
            continue
        if onsets.size and np.min(np.abs(onsets - t)) <= 0.05:
            counts[MISS_CAUSES[3]] += 1
            continue
        lo = max(int(np.ceil((t - 0.05 + shift_s) / hop_s)) - 1, 0)
        hi = int(np.floor((t + 0.05 + shift_s) / hop_s))
        peak = float(trace.onset[lo:hi].max()) if hi > lo else 0.0
        if peak < params.onset_threshold - params.rearm_margin:
            counts[MISS_CAUSES[0]] += 1
        elif peak < params.onset_threshold:
            counts[MISS_CAUSES[1]] += 1
        else:
            counts[MISS_CAUSES[2]] += 1
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--copies", type=int, default=3, help="2: without the Opus copy")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--min-short-fluxes", default="3,4,5")
    ap.add_argument("--rearm-margins", default="0,0.15,0.2")
    ap.add_argument("--adapt-ratios", default="0,0.5,0.6")
    ap.add_argument("--adapt-windows-s", default="0.2,0.35")
    a = ap.parse_args()
    wavs = sorted(a.data.glob("*0.wav"))
    with ProcessPoolExecutor(a.jobs) as ex:
        traces = list(ex.map(record, [(w, k) for w in wavs for k in range(a.copies)], chunksize=4))
    print(f"{len(wavs)} held-out clips x {a.copies} copies")
    base = DecisionParams()
    grid = itertools.product(
        [float(v) for v in a.min_short_fluxes.split(",")],
        [float(v) for v in a.rearm_margins.split(",")],
        [float(v) for v in a.adapt_ratios.split(",")],
        [float(v) for v in a.adapt_windows_s.split(",")],
    )
    rows = []
    for flux, margin, ratio, window_s in grid:
        if ratio == 0 and window_s != float(a.adapt_windows_s.split(",")[0]):
            continue  # no raised threshold: the window does nothing
        p = replace(
            base,
            min_short_flux=flux,
            rearm_margin=margin,
            adapt_ratio=ratio,
            adapt_window_s=window_s,
        )
        m = onset_f1(traces, p)
        mean = float(np.mean([*m.values()]))
        rows.append((mean, flux, margin, ratio, window_s))
        per_copy = " ".join(f"copy{c}: {v:.4f}" for c, v in m.items())
        print(
            f"min_short_flux {flux:.1f} rearm_margin {margin:.2f} adapt_ratio {ratio:.2f} "
            f"adapt_window_s {window_s:.2f}: {per_copy} mean {mean:.4f}",
            flush=True,
        )
    best = max(rows)
    print(
        f"best: min_short_flux {best[1]:.1f} rearm_margin {best[2]:.2f} adapt_ratio "
        f"{best[3]:.2f} adapt_window_s {best[4]:.2f} (mean onset F1 {best[0]:.4f})"
    )
    chosen = replace(
        base,
        min_short_flux=best[1],
        rearm_margin=best[2],
        adapt_ratio=best[3],
        adapt_window_s=best[4],
    )
    print("why the best setting misses true onsets (share of its misses):")
    for copy in range(a.copies):
        total = dict.fromkeys(MISS_CAUSES, 0)
        for t in traces:
            if t.copy == copy:
                for k, v in miss_causes(t, chosen).items():
                    total[k] += v
        n = max(sum(total.values()), 1)
        shares = "; ".join(f"{k} {v} ({v / n:.2f})" for k, v in total.items())
        print(f"  copy{copy}: {sum(total.values())} missed: {shares}", flush=True)


if __name__ == "__main__":
    main()
