"""Audio-to-result latency of one real-time stream on loopback, ours beside the echo floor.

    python -m loadtests.latency [--file WAV] [--repeats 3] [--seconds 20]

Each repeat streams the same audio at real-time pace, 1024-frame chunks, to a fresh
``edge-server`` process and to a fresh echo server (same proto and gRPC options, no analysis),
alternating which goes first. Latency = client receive time of a chunk's result minus the time
the chunk was sent (client clock). Prints a table, then one JSON line with the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
from pathlib import Path

from clients.analysis_client import AnalysisClient, StreamOptions
from clients.demo import EXCERPT
from clients.results import StreamResult
from clients.wav import WavAudio, read_wav


async def _spawn(kind: str) -> tuple[asyncio.subprocess.Process, int]:
    if kind == "edge":
        cmd = [sys.executable, "-m", "edge_server.cli", "serve", "--grpc-port", "0",
               "--http-port", "0", "--log-level", "WARNING"]  # fmt: skip
    else:
        cmd = [sys.executable, "-m", "loadtests.echo_server", "--port", "0"]
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    port = int(line.split("grpc=")[1].split()[0])
    return proc, port


async def _run_one(kind: str, audio: WavAudio) -> dict[str, float]:
    proc, port = await _spawn(kind)
    try:
        result = StreamResult()
        async with AnalysisClient(f"127.0.0.1:{port}") as client:
            await client.wait_ready()
            async for ev in client.stream(audio, StreamOptions(realtime=True)):
                result.add(ev)
        lat = result.latency_percentiles_ms()
        return {k: float(v) for k, v in lat.items() if v is not None} | {
            "chunks": float(result.chunks)
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()


async def run(file: Path, repeats: int, seconds: float) -> dict[str, dict[str, float]]:
    full = read_wav(file)
    n = min(full.n_frames, int(seconds * full.sample_rate_hz)) * full.frame_bytes
    audio = WavAudio(full.data[:n], full.encoding, full.sample_rate_hz, full.channels)
    rows: dict[str, list[dict[str, float]]] = {"edge": [], "echo": []}
    for r in range(repeats):
        order = ["edge", "echo"] if r % 2 == 0 else ["echo", "edge"]
        for kind in order:
            res = await _run_one(kind, audio)
            rows[kind].append(res)
            print(
                f"repeat {r + 1} {kind:5s}: p50 {res['p50']:.2f} ms  p95 {res['p95']:.2f} ms  "
                f"p99 {res['p99']:.2f} ms  max {res['max']:.2f} ms  ({int(res['chunks'])} chunks)",
                flush=True,
            )
    med = {
        kind: {k: round(statistics.median(x[k] for x in runs), 3) for k in ("p50", "p95", "p99")}
        for kind, runs in rows.items()
    }
    return med


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--file", type=Path, default=EXCERPT)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=20.0)
    a = p.parse_args()
    med = asyncio.run(run(a.file, a.repeats, a.seconds))
    print(
        f"median of {a.repeats}: edge p99 {med['edge']['p99']:.2f} ms vs echo floor "
        f"p99 {med['echo']['p99']:.2f} ms"
    )
    print(json.dumps({"file": a.file.name, "repeats": a.repeats, "median_ms": med}))


if __name__ == "__main__":
    main()
