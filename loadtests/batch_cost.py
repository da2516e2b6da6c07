"""The analysis's CPU per chunk against the number of streams per call, at a stream's cadence.

    OPENBLAS_NUM_THREADS=1 python -m loadtests.batch_cost [--streams 1,2,4,8,16] [--calls 150]
    make bench-batch-cost        # the same, defaults (~3 min)

For each batch size B: B corpus streams (fast notes on, 44.1 kHz, 1024-frame chunks) analysed
together by ``analyze_many``, ``--calls`` calls made every ``--period-s`` (23.2 ms: as a node's
streams make them) and, side by side, back to back; the figure is the calling thread's CPU per
chunk (``time.thread_time_ns``), the median over the calls after the first 20 (first-use
plans). A loaded node's batcher runs small batches (its ``edge_batch_chunks`` metric): this says
what a chunk costs at those sizes, and what bigger batches would save. Prints one line per
size and repeat, then one JSON line with the medians over repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from clients.wav import read_wav
from edge_server.dsp.analyzer import AnalyzerConfig, StreamAnalyzer, analyze_many

CHUNK_FRAMES = 1024
RATE_HZ = 44_100
_SKIP = 20


def per_chunk_us(signals: list[np.ndarray], *, streams: int, calls: int, period_s: float) -> float:
    """Median thread CPU per chunk (us) of ``calls`` calls on ``streams`` fresh analyzers,
    a call every ``period_s`` (0: back to back)."""
    ans = [
        StreamAnalyzer(input_rate_hz=RATE_HZ, config=AnalyzerConfig(), notes=True)
        for _ in range(streams)
    ]
    costs = []
    for k in range(calls):
        i = k * CHUNK_FRAMES
        chunk = [signals[j % len(signals)][i : i + CHUNK_FRAMES] for j in range(streams)]
        t0 = time.thread_time_ns()
        analyze_many(ans, chunk)
        costs.append((time.thread_time_ns() - t0) / 1e3 / streams)
        if period_s:
            time.sleep(period_s)
    return float(np.median(costs[min(_SKIP, calls - 1) :]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--streams", default="1,2,4,8,16", help="batch sizes, comma-separated")
    p.add_argument("--calls", type=int, default=150)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--period-s", type=float, default=CHUNK_FRAMES / RATE_HZ)
    p.add_argument(
        "--corpus",
        type=Path,
        default=Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "public",
    )
    a = p.parse_args()
    sizes = [int(x) for x in a.streams.split(",")]
    need = a.calls * CHUNK_FRAMES
    signals = []
    for path in sorted(a.corpus.glob("*.wav")):
        w = read_wav(path)
        if w.encoding != "PCM16_LE" or w.sample_rate_hz != RATE_HZ or w.channels != 1:
            continue
        x = np.frombuffer(w.data, dtype="<i2").astype(np.float32) / 32768.0
        if x.size >= need:
            signals.append(x)
    if not signals:
        raise SystemExit(f"no mono {RATE_HZ} Hz file of {need} frames or more in {a.corpus}")
    runs: dict[int, dict[str, list[float]]] = {
        b: {"cadence": [], "back_to_back": []} for b in sizes
    }
    for r in range(a.repeats):
        for b in sizes:
            cad = per_chunk_us(signals, streams=b, calls=a.calls, period_s=a.period_s)
            btb = per_chunk_us(signals, streams=b, calls=a.calls, period_s=0.0)
            runs[b]["cadence"].append(cad)
            runs[b]["back_to_back"].append(btb)
            print(
                f"repeat {r + 1}, {b:3d} streams per call: {cad:7.0f} us per chunk every "
                f"{a.period_s * 1e3:.1f} ms, {btb:7.0f} us back to back",
                flush=True,
            )
    out = {
        "bench": "batch_cost",
        "calls": a.calls,
        "period_s": a.period_s,
        "us_per_chunk": {
            str(b): {k: round(statistics.median(v), 1) for k, v in runs[b].items()} for b in sizes
        },
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
