"""Acceptance: two edge servers share a Redis store; kill -9 (or stop) the one serving a
stream at mid-file; the client resumes on the other (real processes, real Redis, real gRPC)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from clients.analysis_client import StreamOptions
from clients.inprocess import analyze_inprocess
from clients.results import StreamResult
from clients.scoring import onset_f_measure
from clients.wav import read_wav
from tests.procs import edge_node, stop
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
EXCERPT = ROOT / "clients" / "data" / "mozart_k545_mvt1_20s.wav"


def _reference_onsets() -> list[float]:
    notes = json.loads(EXCERPT.with_suffix(".json").read_text())["notes"]
    return sorted({round(n[0], 6) for n in notes})


@pytest.mark.slow
async def test_kill_9_mid_file_resumes_on_the_other_node(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    a, pa = await edge_node("node-a", "--store", redis_server.url)
    b, pb = await edge_node("node-b", "--store", redis_server.url)
    try:
        targets = f"127.0.0.1:{pa['grpc']},127.0.0.1:{pb['grpc']}"
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "clients.cli", "stream", str(EXCERPT), "--realtime",
            "--target", targets, "--out-dir", str(tmp_path), "--json",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await asyncio.sleep(9.0)  # mid-file (the excerpt is 20 s)
        a.kill()
        await a.wait()
        out, _ = await asyncio.wait_for(client.communicate(), 60)
        assert client.returncode == 0
        report = json.loads(out.decode().strip().splitlines()[-1])
    finally:
        await stop(a, kill=True)
        await stop(b)
    resume = report["resume"]
    assert resume["nodes"] == ["node-a", "node-b"], resume
    assert resume["resumes"] == 1
    assert resume["outages_s"][0] <= 2.0, resume
    audit = report["result_seqs"]
    assert audit["duplicates"] == 0 and audit["missing"] == 0, audit
    assert audit["count"] == 862  # every chunk of the file answered exactly once
    # predictions against an uninterrupted run of the same streaming code
    got = [float(x) for x in (tmp_path / f"{EXCERPT.stem}.onsets.txt").read_text().split()]
    whole = StreamResult()
    for ev in analyze_inprocess(read_wav(EXCERPT), StreamOptions()):
        whole.add(ev)
    ref = _reference_onsets()
    f_resumed = onset_f_measure(ref, got)[0]
    f_whole = onset_f_measure(ref, whole.onset_times_s())[0]
    print(
        f"resume outage {resume['outages_s'][0]:.3f} s; F1 resumed {f_resumed:.4f} vs {f_whole:.4f}"
    )
    assert abs(f_resumed - f_whole) <= 0.01
    # the snapshot restores the state exactly: the onsets are the same numbers
    assert got == pytest.approx(whole.onset_times_s(), abs=1e-6)


@pytest.mark.slow
async def test_a_hung_node_is_left_for_the_other_within_the_result_timeout(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """SIGSTOP the serving node at mid-file: its TCP connection stays up and no result comes;
    after result_timeout_s (5 s) of silence with chunks unanswered the client resumes on the
    other node, every chunk answered once (gRPC keepalive alone took ~20 s to notice)."""
    a, pa = await edge_node("node-a", "--store", redis_server.url)
    b, pb = await edge_node("node-b", "--store", redis_server.url)
    stopped = False
    try:
        targets = f"127.0.0.1:{pa['grpc']},127.0.0.1:{pb['grpc']}"
        t0 = asyncio.get_running_loop().time()
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "clients.cli", "stream", str(EXCERPT), "--realtime",
            "--target", targets, "--out-dir", str(tmp_path), "--json",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await asyncio.sleep(9.0)
        os.kill(a.pid, signal.SIGSTOP)
        stopped = True
        out, _ = await asyncio.wait_for(client.communicate(), 60)
        elapsed_s = asyncio.get_running_loop().time() - t0
        assert client.returncode == 0
        # the 20 s file (the silence falls inside it): ~23 s; keepalive alone noticed the
        # stopped node after ~20 s (finished at ~33 s)
        assert elapsed_s < 28.0, elapsed_s
        report = json.loads(out.decode().strip().splitlines()[-1])
    finally:
        if stopped:
            os.kill(a.pid, signal.SIGCONT)
        await stop(a, kill=True)
        await stop(b)
    resume = report["resume"]
    assert resume["nodes"] == ["node-a", "node-b"], resume
    assert resume["resumes"] == 1
    assert resume["outages_s"][0] <= 2.0, resume  # from the silence's detection to node-b
    audit = report["result_seqs"]
    assert audit["duplicates"] == 0 and audit["missing"] == 0 and audit["count"] == 862, audit
    got = [float(x) for x in (tmp_path / f"{EXCERPT.stem}.onsets.txt").read_text().split()]
    whole = StreamResult()
    for ev in analyze_inprocess(read_wav(EXCERPT), StreamOptions()):
        whole.add(ev)
    assert got == pytest.approx(whole.onset_times_s(), abs=1e-6)
