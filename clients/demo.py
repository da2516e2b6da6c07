"""The main job in one command: start an edge server, stream a real piece, print, stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from .analysis_client import AnalysisClient, ChunkResultEvent, StreamOptions
from .cli import _print_event
from .results import StreamResult
from .scoring import note_f_measure, onset_f_measure
from .wav import read_wav

DATA = Path(__file__).parent / "data"
EXCERPT = DATA / "mozart_k545_mvt1_20s.wav"


async def _start_server() -> tuple[asyncio.subprocess.Process, dict[str, int]]:
    """Start ``edge-server serve`` on free ports; its first stdout line names them."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge_server.cli", "serve",
        "--grpc-port", "0", "--http-port", "0", "--node-id", "demo-node",
        "--log-level", "WARNING",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
    fields = dict(p.split("=", 1) for p in line.decode().split()[2:])
    if not line.startswith(b"edge-server ready"):
        proc.kill()
        raise RuntimeError(f"edge-server did not start: {line!r}")
    return proc, {k: int(v) for k, v in fields.items()}


async def run_demo(*, file: str | None, realtime: bool) -> int:
    path = Path(file) if file else EXCERPT
    audio = await asyncio.to_thread(read_wav, path)
    proc, ports = await _start_server()
    try:
        target = f"127.0.0.1:{ports['grpc']}"
        print(
            f"== edge-server up (gRPC {target}, metrics http://127.0.0.1:{ports['http']}"
            f"/metrics); streaming {path.name} ({audio.duration_s:.1f} s) "
            f"{'at real-time pace' if realtime else 'as fast as possible'}",
            flush=True,
        )
        result = StreamResult()
        opts = StreamOptions(
            analyses=("ONSETS", "FEATURES", "REFINED_NOTES"), realtime=realtime, client_name="demo"
        )
        async with AnalysisClient(target) as client:
            await client.wait_ready()
            async for event in client.stream(audio, opts):
                result.add(event)
                _print_event(event, quiet=False)
                if isinstance(event, ChunkResultEvent) and event.seq % 43 == 42:
                    feats = event.features
                    if feats is not None and feats.rms_db:
                        print(
                            f"   [{event.stream_time_s:5.1f} s] level "
                            f"{feats.rms_db[-1]:6.1f} dBFS  centroid "
                            f"{feats.spectral_centroid_hz[-1]:6.0f} Hz",
                            flush=True,
                        )
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await proc.wait()
    lat = result.latency_percentiles_ms()
    print("== summary")
    print(f"   chunks {result.chunks}, hops {result.hops}, onsets {len(result.onsets)}")
    if lat["p50"] is not None:
        print(
            f"   audio-to-result latency p50 {lat['p50']:.2f} ms, p95 {lat['p95']:.2f} ms, "
            f"p99 {lat['p99']:.2f} ms (client clock, loopback)"
        )
    truth = await asyncio.to_thread(_truth, path.with_suffix(".json"))
    if truth is not None:
        ref, ref_notes = truth
        f, p, r = onset_f_measure(ref, result.onset_times_s())
        print(f"   onset F1 vs ground truth {f:.3f} (precision {p:.3f}, recall {r:.3f}, 50 ms)")
        lists = result.note_lists()
        for tier, when in (("fast", "~50 ms"), ("refined", "~2 s")):
            est = [(on, pitch) for on, _, pitch in lists[tier]]
            f, p, r = note_f_measure(ref_notes, est)
            print(
                f"   {tier} notes ({when} after the onset): {len(est)}, note F1 {f:.3f} "
                f"(precision {p:.3f}, recall {r:.3f}; onset within 50 ms, same pitch)"
            )
    print(f"   server stopped (exit code {code})")
    return 0 if code == 0 and result.chunks > 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(run_demo(file=os.environ.get("DEMO_WAV"), realtime=True)))


def _truth(path: Path) -> tuple[list[float], list[tuple[float, int]]] | None:
    if not path.exists():
        return None
    gt = json.loads(path.read_text())
    return gt["onsets_s"], [(float(n[0]), int(n[2])) for n in gt["notes"]]
