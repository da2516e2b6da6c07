"""WebRTC between real peers (aiortc client <-> aiortc server): accuracy and resource release."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import mir_eval
import numpy as np

from clients.analysis_client import AnalysisClient, ChunkResultEvent, StreamOptions
from clients.demo import EXCERPT
from clients.scoring import note_f_measure
from clients.wav import WavAudio, read_wav
from clients.webrtc_client import stream_webrtc
from edge_server.app import EdgeNode
from tests.procs import edge_node, stop


async def test_python_webrtc_client_matches_grpc_on_a_corpus_excerpt(node: EdgeNode) -> None:
    audio = read_wav(EXCERPT)
    truth = json.loads(EXCERPT.with_suffix(".json").read_text())
    ref = np.asarray(truth["onsets_s"])
    over_grpc: list[float] = []
    notes_grpc: list[tuple[float, int]] = []
    async with AnalysisClient(f"127.0.0.1:{node.grpc_port}") as c:
        async for ev in c.stream(audio, StreamOptions(analyses=("ONSETS", "NOTES"))):
            if isinstance(ev, ChunkResultEvent):
                over_grpc += [o.time_s for o in ev.onsets]
                notes_grpc += [(n.onset_s, n.midi_pitch) for n in ev.notes if n.action == "ON"]
    r = await stream_webrtc(
        f"http://127.0.0.1:{node.http_port}", audio, analyses=("ONSETS", "FEATURES", "NOTES")
    )
    f_grpc = mir_eval.onset.f_measure(ref, np.asarray(over_grpc), window=0.05)[0]
    f_rtc = mir_eval.onset.f_measure(ref, np.asarray(r.onsets), window=0.05)[0]
    # the fast tier's notes come over the DataChannel too (Opus-coded audio: within 0.05)
    ref_notes = [(n[0], int(n[2])) for n in truth["notes"]]
    n_grpc = note_f_measure(ref_notes, notes_grpc)[0]
    n_rtc = note_f_measure(ref_notes, [(on, p) for on, _, p in r.notes.values()])[0]
    print(f"fast-note F1 gRPC {n_grpc:.3f}, WebRTC {n_rtc:.3f} ({len(r.notes)} notes)")
    assert n_grpc >= 0.8
    assert abs(n_grpc - n_rtc) <= 0.05
    assert all(off == 0.0 or off >= on for on, off, _ in r.notes.values())
    lat = np.percentile(r.latencies_ms, [50, 95])
    print(
        f"onset F1 gRPC {f_grpc:.3f}, WebRTC {f_rtc:.3f}; DataChannel latency "
        f"p50 {lat[0]:.1f} ms p95 {lat[1]:.1f} ms"
    )
    assert abs(f_grpc - f_rtc) <= 0.03
    assert r.summary["dropped_messages"] == 0
    for _ in range(50):
        if not node.gateway.peers and node.manager.active_count == 0:
            break
        await asyncio.sleep(0.1)
    assert not node.gateway.peers and node.manager.active_count == 0


async def _status(http: aiohttp.ClientSession, port: int) -> dict[str, object]:
    async with http.get(f"http://127.0.0.1:{port}/api/v1/edge/status") as r:
        body: dict[str, object] = await r.json()
        return body


async def test_twenty_peers_ten_times_release_everything(tmp_path: Path) -> None:
    """20 peers opened and closed 10 times against a server process: its asyncio tasks return
    to the baseline taken after two warm-up rounds, its thread count stays within a few of the
    baseline (bounded thread pools start threads lazily, so a late round on a slow VM may add
    one, as seen once: 8 -> 9; a leak of a thread per round adds 10, per peer 200), no peer or
    session is left, and RSS does not trend up. glibc's allocator grows in one-off steps of a
    few MB (measured the same before the session-store work: +6.7 MB over 22 rounds, in
    steps), so the leak check is on the last 5 rounds (100 peers): <= 3 MB, i.e. < 30 kB per
    peer, and <= 10 MB overall. Admission control is relaxed (``overload_s`` 1 s): this test is
    about release, and on a slow day of this shared VM 10 peers at once made chunks wait 15 ms
    and the node refused the rest with RESOURCE_EXHAUSTED, as it should
    (tests/transport/test_capacity_grpc.py tests that)."""
    cfg = tmp_path / "churn.toml"
    cfg.write_text("[batcher]\noverload_s = 1.0\n")
    proc, ports = await edge_node("churn", "--config", str(cfg))
    port = ports["http"]
    url = f"http://127.0.0.1:{port}"
    x = np.sin(np.arange(48000) / 48000 * 2 * np.pi * 440) * 0.3
    one_second = WavAudio((x * 32767).astype("<i2").tobytes(), "PCM16_LE", 48000, 1)

    async def round_of_20() -> None:
        results = await asyncio.gather(*(stream_webrtc(url, one_second) for _ in range(20)))
        bad = [
            (r.session_id, r.summary, r.messages, r.error)
            for r in results
            if r.summary.get("chunks", 0) < 45
        ]
        assert not bad, bad

    async def settled(http: aiohttp.ClientSession) -> dict[str, object]:
        for _ in range(100):
            st = await _status(http, port)
            if st["webrtc_peers"] == 0 and st["active_sessions"] == 0:
                await asyncio.sleep(0.5)
                return await _status(http, port)
            await asyncio.sleep(0.1)
        raise AssertionError(f"peers not released: {st}")

    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(2):  # warm-up: codecs, thread pools, allocator arenas
                await round_of_20()
            base = (await settled(http))["process"]
            rss: list[float] = []
            threads: list[int] = []
            for _ in range(10):
                await round_of_20()
                after = (await settled(http))["process"]
                rss.append(after["rss_mb"])  # type: ignore[index,arg-type]
                threads.append(after["threads"])  # type: ignore[index,arg-type]
            print(
                f"baseline {base}, after 10 rounds of 20 peers {after}; RSS by round {rss}, "
                f"threads by round {threads}"
            )
            assert max(threads) <= base["threads"] + 4  # type: ignore[index,operator]
            assert after["asyncio_tasks"] == base["asyncio_tasks"]  # type: ignore[index]
            growth_mb = after["rss_mb"] - base["rss_mb"]  # type: ignore[index,operator]
            late_mb = rss[-1] - rss[-6]
            print(
                f"RSS change over 200 peers: {growth_mb:+.1f} MB, over the last 100: {late_mb:+.1f}"
            )
            assert abs(growth_mb) <= 10.0
            assert late_mb <= 3.0
    finally:
        await stop(proc)
