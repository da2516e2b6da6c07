"""Our server with its analysis modelled as running in another process (an experiment).

    python -m loadtests.offgil_server serve [edge-server serve options]
    python -m loadtests.capacity --kinds edge,edge-offgil --workers 1   # side by side

What would the latency and the capacity be if the analysis did not share a GIL (and a
process) with the event loop? Building that (an analysis process per node fed by the
workers) is a large change; this measures its upper bound first. The server is
``edge-server serve`` unchanged except for :func:`~edge_server.dsp.analyzer.analyze_many` as
the batch thread calls it: instead of analysing, the batch thread sends the batch's cost to a
helper process (one per serving process) and waits on the pipe without the GIL; the helper
burns that much CPU in one C-level loop and answers. So the analysis's CPU is still spent on
this machine's cores, by another process, and the pipe's round trip is paid, as a real split
would pay them.

The cost burnt per batch of ``n`` chunks is ``fixed + per_chunk * n`` (``OFFGIL_FIXED_MS``,
``OFFGIL_PER_CHUNK_MS``; default 0.9 and 0.35 ms): what ``make bench-batch-cost`` measures for
the real analysis at a stream's cadence (1.3-1.6 ms for 1 chunk, 0.53-0.6 ms per chunk for 4,
0.39-0.43 for 8). The blocks returned carry the chunk's hops with zero features and no onsets
or notes, so the results are a little smaller than real ones. Not a product mode: it answers
no music.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as edge_server.cli does, before numpy

import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import edge_server.pipeline.batcher as batcher
from edge_server.dsp.analyzer import F32, AnalysisBlock, StreamAnalyzer

FIXED_S = float(os.environ.get("OFFGIL_FIXED_MS", "0.9")) / 1e3
PER_CHUNK_S = float(os.environ.get("OFFGIL_PER_CHUNK_MS", "0.35")) / 1e3

#: the repository root: the helper runs ``python -m loadtests.spin`` from there
_ROOT = Path(__file__).resolve().parents[1]

_EMPTY_F32 = np.zeros(0, dtype=np.float32)
_EMPTY_F64 = np.zeros(0, dtype=np.float64)


class Burner:
    """The helper process and its pipe (used by the one batch thread; a lock for safety)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the helper (at startup: a bench then counts it among the server's processes)."""
        with self._lock:
            if self._proc is None:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "loadtests.spin"],
                    cwd=_ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    bufsize=1,
                )

    def burn(self, seconds: float) -> None:
        self.start()
        with self._lock:
            assert self._proc is not None
            assert self._proc.stdin is not None and self._proc.stdout is not None
            self._proc.stdin.write(f"{seconds:.6f}\n")
            self._proc.stdin.flush()
            if self._proc.stdout.readline() != "ok\n":
                raise RuntimeError("offgil helper process died")


_burner = Burner()


def modelled_analyze_many(
    analyzers: Sequence[StreamAnalyzer], samples: Sequence[F32]
) -> list[AnalysisBlock]:
    """Pay the batch's modelled cost in the helper, then return each chunk's hops with zero
    features (the analyzers' hop counters and stream time advance as a real pass would)."""
    _burner.burn(FIXED_S + PER_CHUNK_S * len(analyzers))
    out = []
    for a, x in zip(analyzers, samples, strict=True):
        c = a.config
        first = a.frames_done
        a.samples_in += int(x.shape[0])
        done = round(a.stream_time_s * c.analysis_rate_hz) // c.hop_samples
        n = max(done - first, 0)
        a.frames_done = first + n
        zeros = np.zeros(n, dtype=np.float32)
        out.append(
            AnalysisBlock(
                onset_times_s=_EMPTY_F64,
                onset_strengths=_EMPTY_F32,
                onset_detected_at_s=_EMPTY_F64,
                first_frame_time_s=a._frame_centre_s(first),
                rms_db=zeros,
                centroid_hz=zeros,
                flux=zeros,
                samples=_EMPTY_F32,
            )
        )
    return out


def main() -> int:
    argv = sys.argv[1:]
    if "--workers" in argv and argv[argv.index("--workers") + 1 :][:1] != ["1"]:
        # more workers are started as fresh `edge_server.cli` processes, without the model
        raise SystemExit("offgil_server: --workers must be 1 (the model patches this process)")
    batcher.analyze_many = modelled_analyze_many  # type: ignore[assignment] # the experiment
    _burner.start()
    from edge_server.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
