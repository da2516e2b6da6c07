"""What durability costs: node CPU and audio-to-result latency with sessions in memory, in
Redis (write-through), and in Redis plus the cloud forwarder, measured side by side.

    python -m loadtests.durability [--streams 10] [--seconds 20] [--repeats 3]

Each repeat starts a fresh ``edge-server`` per mode (in rotating order), streams the bundled
excerpt on ``--streams`` concurrent real-time streams (1024-frame chunks, 44.1 kHz PCM16) for
``--seconds``, and reads the node's CPU time from /proc. Redis servers (edge, cloud) and the
``edge-server sink`` are separate processes and are not counted in the node's CPU. Prints one
JSON line: per mode the medians of node CPU-s per audio-s per stream and latency p50/p95/p99,
and the ratios against ``memory``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from clients.analysis_client import AnalysisClient, ChunkResultEvent, StreamOptions
from clients.demo import EXCERPT
from clients.wav import WavAudio, read_wav
from loadtests.procstat import cpu_s
from tests.redis_server import RedisServer

MODES = ("memory", "redis", "redis+cloud")


async def _spawn(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge_server.cli", *args, "--log-level", "WARNING",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()


async def _load(
    port: int, audio: WavAudio, streams: int, seconds: float
) -> tuple[list[float], float]:
    lat: list[float] = []
    audio_s = 0.0
    deadline = time.monotonic() + seconds

    async def one() -> None:
        nonlocal audio_s
        async with AnalysisClient(f"127.0.0.1:{port}") as c:
            await c.wait_ready()
            while time.monotonic() < deadline:
                async for ev in c.stream(audio, StreamOptions(realtime=True)):
                    if isinstance(ev, ChunkResultEvent) and ev.latency_ms is not None:
                        lat.append(ev.latency_ms)
                        audio_s += 1024 / audio.sample_rate_hz
                    if time.monotonic() > deadline:
                        break

    await asyncio.gather(*(one() for _ in range(streams)))
    return lat, audio_s


async def _run(
    mode: str, audio: WavAudio, streams: int, seconds: float, tmp: Path
) -> dict[str, float]:
    edge = RedisServer(appendfsync="everysec")
    cloud = RedisServer()
    extra: list[str] = []
    sink = None
    if mode != "memory":
        edge.start()
        extra += ["--store", edge.url]
    if mode == "redis+cloud":
        cloud.start()
        extra += ["--cloud", cloud.url, "--spool-dir", str(tmp / f"spool-{time.time_ns()}")]
        db = str(tmp / f"{time.time_ns()}.db")
        sink, _ = await _spawn("sink", "--redis", cloud.url, "--db", db, "--http-port", "0")
    node, line = await _spawn("serve", "--grpc-port", "0", "--http-port", "0", *extra)
    port = int(line.split("grpc=")[1].split()[0])
    try:
        c0 = cpu_s([node.pid])
        lat, audio_s = await _load(port, audio, streams, seconds)
        cpu = cpu_s([node.pid]) - c0
    finally:
        for p in (node, sink):
            if p is not None:
                p.terminate()
                await p.wait()
        edge.stop()
        cloud.stop()
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    return {"cpu_s_per_audio_s": cpu / audio_s, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    audio = read_wav(args.file)
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as d:
        for r in range(args.repeats):
            order = MODES[r % 3 :] + MODES[: r % 3]
            for mode in order:
                res = await _run(mode, audio, args.streams, args.seconds, Path(d))
                runs[mode].append(res)
                shown = " ".join(f"{k}={v:.4g}" for k, v in res.items())
                print(f"repeat {r + 1} {mode:12s} {shown}", file=sys.stderr, flush=True)
    med = {m: {k: statistics.median(x[k] for x in v) for k in v[0]} for m, v in runs.items()}
    base = med["memory"]["cpu_s_per_audio_s"]
    return {
        "streams": args.streams,
        "seconds": args.seconds,
        "repeats": args.repeats,
        "median": {m: {k: round(v, 5) for k, v in d.items()} for m, d in med.items()},
        "cpu_ratio_vs_memory": {m: round(med[m]["cpu_s_per_audio_s"] / base, 3) for m in MODES},
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="loadtests.durability", description=__doc__)
    p.add_argument("--file", type=Path, default=EXCERPT)
    p.add_argument("--streams", type=int, default=10)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--repeats", type=int, default=3)
    print(json.dumps(asyncio.run(main_async(p.parse_args()))))


if __name__ == "__main__":
    main()
