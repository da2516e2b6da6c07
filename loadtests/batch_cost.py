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

``--stages`` also splits each size's cost by the analysis's stages (the functions
``analyze_many`` calls, each wrapped with a thread-CPU timer for that run; ``rest`` is the
framing, the glue between stages and the results), at a stream's cadence and back to back:
where the cold start's extra cost goes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

import edge_server.dsp.analyzer as analyzer_mod
from clients.wav import read_wav
from edge_server.dsp.analyzer import AnalyzerConfig, StreamAnalyzer, analyze_many
from loadtests.spin import spin

CHUNK_FRAMES = 1024
RATE_HZ = 44_100
_SKIP = 20


#: how the calling thread spends the time between two calls
GAPS = ("cadence", "busy", "back_to_back")
#: the gaps ``--stages`` splits
SPLIT_GAPS = ("cadence", "back_to_back")


#: the stages ``analyze_many`` runs, by the names it calls them in its module, and a label
STAGES = {
    "process_many": "resample",
    "rfft_magnitudes": "fft",
    "spectral_centroid_hz": "centroid",
    "net_inputs": "bands",
    "rms_db": "rms",
    "superflux_many": "superflux",
    "net_many": "onset_network",
    "decide_onsets_many": "onset_decisions",
    "key_levels": "key_levels",
    "decide_notes_many": "fast_notes",
}


@contextmanager
def timed_stages() -> Iterator[dict[str, int]]:
    """While open, every stage function ``analyze_many`` calls adds its calls' thread CPU (ns)
    to the yielded dict under its label (:data:`STAGES`); the functions are restored on exit."""
    spent = dict.fromkeys(STAGES.values(), 0)
    real = {name: getattr(analyzer_mod, name) for name in STAGES}

    def timed(label: str, f: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            t0 = time.thread_time_ns()
            try:
                return f(*args, **kwargs)
            finally:
                spent[label] += time.thread_time_ns() - t0

        return call

    for name, f in real.items():
        setattr(analyzer_mod, name, timed(STAGES[name], f))
    try:
        yield spent
    finally:
        for name, f in real.items():
            setattr(analyzer_mod, name, f)


def per_chunk_us(
    signals: list[np.ndarray],
    *,
    streams: int,
    calls: int,
    period_s: float,
    gap: str = "cadence",
    stages: dict[str, float] | None = None,
) -> float:
    """Median thread CPU per chunk (us) of ``calls`` calls on ``streams`` fresh analyzers,
    a call every ``period_s``, the time between calls spent as ``gap`` says (see GAPS).

    With ``stages`` (a dict to fill), the calls run with :func:`timed_stages` and ``stages``
    gets each stage's mean CPU per chunk (us) over the same calls, and ``rest``."""
    if gap not in GAPS:
        raise ValueError(f"gap must be one of {GAPS}, not {gap!r}")
    if stages is None:
        return _per_chunk_us(signals, streams, calls, period_s, gap, None)
    with timed_stages() as spent:
        return _per_chunk_us(signals, streams, calls, period_s, gap, (spent, stages))


def _per_chunk_us(
    signals: list[np.ndarray],
    streams: int,
    calls: int,
    period_s: float,
    gap: str,
    split: tuple[dict[str, int], dict[str, float]] | None,
) -> float:
    ans = [
        StreamAnalyzer(input_rate_hz=RATE_HZ, config=AnalyzerConfig(), notes=True)
        for _ in range(streams)
    ]
    costs = []
    skip = min(_SKIP, calls - 1)
    for k in range(calls):
        if split is not None and k == skip:  # stages count the calls the median counts
            split[0].update(dict.fromkeys(split[0], 0))
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
    if split is not None:
        spent, out = split
        counted = (calls - skip) * streams
        out.update({label: ns / 1e3 / counted for label, ns in spent.items()})
        out["rest"] = float(np.mean(costs[skip:])) - sum(out.values())
    return float(np.median(costs[skip:]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--streams", default="1,2,4,8,16", help="batch sizes, comma-separated")
    p.add_argument("--calls", type=int, default=150)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--period-s", type=float, default=CHUNK_FRAMES / RATE_HZ)
    p.add_argument(
        "--stages",
        action="store_true",
        help="also split the cost by stage, at a stream's cadence and back to back",
    )
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
    stage_runs: dict[int, dict[str, dict[str, list[float]]]] = {
        b: {g: {} for g in SPLIT_GAPS} for b in sizes
    }
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
            if a.stages:
                for g in SPLIT_GAPS:
                    split: dict[str, float] = {}
                    per_chunk_us(
                        signals, streams=b, calls=a.calls, period_s=a.period_s, gap=g, stages=split
                    )
                    for label, us in split.items():
                        stage_runs[b][g].setdefault(label, []).append(us)
                    line = " ".join(f"{k} {v:.0f}" for k, v in split.items())
                    print(f"  stages, {g}, mean us per chunk: {line}", flush=True)
    out = {
        "bench": "batch_cost",
        "calls": a.calls,
        "period_s": a.period_s,
        "us_per_chunk": {
            str(b): {k: round(statistics.median(v), 1) for k, v in runs[b].items()} for b in sizes
        },
    }
    if a.stages:
        out["stages_us_per_chunk"] = {
            str(b): {
                g: {k: round(statistics.median(v), 1) for k, v in stage_runs[b][g].items()}
                for g in SPLIT_GAPS
            }
            for b in sizes
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
