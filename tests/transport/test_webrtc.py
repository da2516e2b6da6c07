"""WebRTC between real peers (aiortc client <-> aiortc server): accuracy and resource release."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import mir_eval
import numpy as np
import pytest

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
    """20 peers opened and closed 10 times against a server process, after two warm-up rounds.

    Released: its asyncio tasks return to the baseline; its thread count stays within a few of
    the baseline (bounded thread pools start threads lazily, so a late round on a slow VM may
    add one, as seen once: 8 -> 9; a leak of a thread per round adds 10, per peer 200); no peer
    or session is left.

    Not leaked, judged on what the process holds rather than on RSS: the bytes malloc has
    handed out (native code: Opus, TLS, SRTP, and Python objects over 512 bytes) grow by a
    least-squares slope of <= 0.15 MB per round of 20 peers, the blocks Python's own allocator
    has handed out by <= 1000. RSS counts freed memory glibc keeps in a fragmented heap, which
    grows in steps: a check of RSS over the last 100 peers (<= 3 MB) failed in CI at +3.3 MB;
    in process the heap in use stayed within 32.4-33.8 MB over 25 rounds while RSS grew 8 MB.
    Measured (12-07), per round: heap +0.009 and +0.068 MB, blocks +209 and +507 (uncollected
    cycles make blocks noisy); with the full collection of transport/webrtc.py's
    ``_release_native_memory`` undone, heap +0.278 MB, blocks +1677, RSS +18.6 MB: it fails.
    The node keeps finished sessions for GetSession (``finished_retention``, 1000 by default,
    bounded logs each); this test keeps 20, so that store is full after the warm-up. RSS stays
    within 10 MB of the baseline.

    Admission control is relaxed (``overload_s`` 1 s): this test is about release, and on a
    slow day of this shared VM 10 peers at once made chunks wait 15 ms and the node refused
    the rest with RESOURCE_EXHAUSTED, as it should (tests/transport/test_capacity_grpc.py tests
    that)."""
    cfg = tmp_path / "churn.toml"
    cfg.write_text("[batcher]\noverload_s = 1.0\n[manager]\nfinished_retention = 20\n")
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

    async def settled(http: aiohttp.ClientSession) -> dict[str, float]:
        for _ in range(100):
            st = await _status(http, port)
            if st["webrtc_peers"] == 0 and st["active_sessions"] == 0:
                await asyncio.sleep(0.5)
                process: dict[str, float] = (await _status(http, port))["process"]  # type: ignore[assignment]
                return process
            await asyncio.sleep(0.1)
        raise AssertionError(f"peers not released: {st}")

    def slope(values: list[float]) -> float:
        return float(np.polyfit(np.arange(len(values)), values, 1)[0])

    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(2):  # warm-up: codecs, thread pools, allocator arenas
                await round_of_20()
            base = await settled(http)
            rounds: list[dict[str, float]] = []
            for _ in range(10):
                await round_of_20()
                rounds.append(await settled(http))
            after = rounds[-1]
            by_round = {k: [r[k] for r in rounds] for k in after}
            print(f"baseline {base}, by round {by_round}")
            assert max(by_round["threads"]) <= base["threads"] + 4
            assert after["asyncio_tasks"] == base["asyncio_tasks"]
            heap = by_round["heap_in_use_mb"]
            assert base["heap_in_use_mb"] is not None, "mallinfo2 unavailable (glibc < 2.33?)"
            heap_slope, blocks_slope = slope(heap), slope(by_round["python_blocks"])
            growth_mb = after["rss_mb"] - base["rss_mb"]
            print(
                f"per round of 20 peers: heap in use {heap_slope:+.3f} MB, Python blocks "
                f"{blocks_slope:+.0f}; RSS change over 200 peers {growth_mb:+.1f} MB"
            )
            assert heap_slope <= 0.15
            assert blocks_slope <= 1000
            assert abs(growth_mb) <= 10.0
    finally:
        await stop(proc)


async def test_client_reports_a_refused_offer_even_without_json() -> None:
    """The offer's answer is an HTML error page (a proxy's 502): the client raises
    ConnectionError with the status instead of a JSON decoding error."""
    from aiohttp import web

    app = web.Application()

    async def bad_gateway(request: web.Request) -> web.Response:
        return web.Response(status=502, text="<html>Bad Gateway</html>", content_type="text/html")

    app.router.add_post("/api/v1/webrtc/offer", bad_gateway)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # bound above
    try:
        wav = WavAudio(b"\0\0" * 4800, "PCM16_LE", 48000, 1)
        with pytest.raises(ConnectionError, match=r"offer refused: 502 .*Bad Gateway"):
            await stream_webrtc(f"http://127.0.0.1:{port}", wav)
    finally:
        await runner.cleanup()
