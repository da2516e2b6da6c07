"""The analysis's CPU per chunk against the number of streams per call, at a stream's cadence.

    OPENBLAS_NUM_THREADS=1 python -m loadtests.batch_cost [--streams 1,2,4,8,16] [--calls 150]
    make bench-batch-cost        # the same, defaults (~75 s)

For each batch size B: B corpus streams (fast notes on, 44.1 kHz, 1024-frame chunks) analysed
together by ``analyze_many``, ``--calls`` calls made every ``--period-s`` (23.2 ms: as a node's
streams make them), in three ways side by side:

* ``cadence``: the thread sleeps between calls (a lone stream on an idle node);
* ``busy``: the thread spins between calls in one C loop (:func:`loadtests.spin.spin`),
  so the core never idles and nothing else runs on it; what is left of the gap to back to
  back is the time itself (the host's other tenants), not this process;
* ``back_to_back``: no gap.

The figure is the calling thread's CPU per chunk (``time.thread_time_ns``), the median over the
calls after the first 20 (first-use plans). A loaded node's batcher runs small batches (its
``edge_batch_chunks`` metric): this says what a chunk costs at those sizes, what bigger batches
would save, and how much of the cost at a stream's cadence is a cold start. Prints one line per
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
from loadtests.spin import spin

CHUNK_FRAMES = 1024
RATE_HZ = 44_100
_SKIP = 20


#: how the calling thread spends the time between two calls
GAPS = ("cadence", "busy", "back_to_back")


def per_chunk_us(
    signals: list[np.ndarray], *, streams: int, calls: int, period_s: float, gap: str = "cadence"
) -> float:
    """Median thread CPU per chunk (us) of ``calls`` calls on ``streams`` fresh analyzers,
    a call every ``period_s``, the time between calls spent as ``gap`` says (see GAPS)."""
    if gap not in GAPS:
        raise ValueError(f"gap must be one of {GAPS}, not {gap!r}")
    ans = [
        StreamAnalyzer(input_rate_hz=RATE_HZ, config=AnalyzerConfig(), notes=True)
        for _ in range(streams)
    ]
    costs = []
    for k in range(calls):
        i = k * CHUNK_FRAMES
        chunk = [signals[j % len(signals)][i : i + CHUNK_FRAMES] for j in range(streams)]
        t_wall = time.perf_counter()
        t0 = time.thread_time_ns()
        analyze_many(ans, chunk)
        costs.append((time.thread_time_ns() - t0) / 1e3 / streams)
        if gap == "cadence":
            time.sleep(max(0.0, t_wall + period_s - time.perf_counter()))
        elif gap == "busy":
            spin(t_wall + period_s)
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
    runs: dict[int, dict[str, list[float]]] = {b: {g: [] for g in GAPS} for b in sizes}
    for r in range(a.repeats):
        for b in sizes:
            got = {}
            for g in GAPS:
                got[g] = per_chunk_us(signals, streams=b, calls=a.calls, period_s=a.period_s, gap=g)
                runs[b][g].append(got[g])
            print(
                f"repeat {r + 1}, {b:3d} streams per call, us per chunk: every "
                f"{a.period_s * 1e3:.1f} ms {got['cadence']:7.0f} sleeping between, "
                f"{got['busy']:7.0f} spinning between; {got['back_to_back']:7.0f} back to back",
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
