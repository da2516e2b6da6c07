"""Headless Chromium plays a WAV into the page through its fake microphone; the onsets the page
shows must score onset F1 >= 0.9 against the file's ground truth.

BROWSER_E2E_WAV / BROWSER_E2E_TRUTH choose the audio and its ground truth (corpus JSON);
default: the bundled excerpt. Chromium's fake capture starts reading (and loops) the file when
the page opens the microphone, before the peer connection exists, so stream time 0 at the
server is an unknown point of the file: the test estimates that one offset from the data (a
histogram of truth-minus-page differences of same-pitch notes, refined to 1 ms; onsets alone
can lock one beat off in regular figuration), maps the page's times onto the file and scores
only the part of the file the stream covered. The page's fast-tier notes must score note F1
>= 0.7 and be listed on the page.
"""

from __future__ import annotations

import json
import os
import shutil
import wave
from pathlib import Path

import mir_eval
import numpy as np
import pytest

from clients.demo import EXCERPT
from clients.scoring import note_f_measure
from edge_server.app import EdgeNode

CHROMIUM = "/usr/bin/chromium"
SHOT = Path(__file__).resolve().parents[2] / "docs" / "browser.png"


def _align(
    ref: np.ndarray,
    det: np.ndarray,
    length_s: float,
    covered_s: float,
    *,
    coarse: float | None = None,
) -> tuple[float, float]:
    """Best onset F1 over file offsets within 15 ms of ``coarse`` (default: the histogram
    mode of truth-minus-detected differences)."""
    if coarse is None:
        diffs = (ref[:, None] - det[None, :]).ravel()
        diffs = np.mod(diffs, length_s)
        hist, edges = np.histogram(diffs, bins=np.arange(0, length_s + 0.01, 0.01))
        coarse = float(edges[np.argmax(hist)] + 0.005)
    best = (-1.0, 0.0)
    for off in np.arange(coarse - 0.015, coarse + 0.015, 0.001):
        mapped = np.mod(det + off, length_s)
        start, end = off % length_s, (off + covered_s) % length_s
        inside = (ref >= start) & (ref <= end) if start < end else (ref >= start) | (ref <= end)
        f = mir_eval.onset.f_measure(np.sort(ref[inside]), np.sort(mapped), window=0.05)[0]
        best = max(best, (f, off))
    return best


def _inputs_truth() -> Path:
    wav = Path(os.environ.get("BROWSER_E2E_WAV", EXCERPT))
    return Path(os.environ.get("BROWSER_E2E_TRUTH", wav.with_suffix(".json")))


def _align_notes(
    truth: list[list[float]], est: list[tuple[float, int]], length_s: float, covered_s: float
) -> tuple[float, float]:
    diffs = np.mod([n[0] - t for n in truth for t, p in est if p == int(n[2])], length_s)
    hist, edges = np.histogram(diffs, bins=np.arange(0, length_s + 0.01, 0.01))
    coarse = edges[np.argmax(hist)] + 0.005
    best = (-1.0, 0.0)
    for off in np.arange(coarse - 0.015, coarse + 0.015, 0.001):
        mapped = [(float(np.mod(t + off, length_s)), p) for t, p in est]
        start, end = off % length_s, (off + covered_s - 0.1) % length_s
        inside = [
            n for n in truth if (start <= n[0] <= end if start < end else not end < n[0] < start)
        ]
        f = note_f_measure([(n[0], int(n[2])) for n in inside], mapped)[0]
        best = max(best, (f, float(off)))
    return best


def _inputs() -> tuple[Path, float, np.ndarray]:
    wav = Path(os.environ.get("BROWSER_E2E_WAV", EXCERPT))
    truth = Path(os.environ.get("BROWSER_E2E_TRUTH", wav.with_suffix(".json")))
    with wave.open(str(wav)) as w:
        length_s = w.getnframes() / w.getframerate()
    return wav, length_s, np.asarray(json.loads(truth.read_text())["onsets_s"])


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed")
async def test_browser_page_shows_onsets_that_score(node: EdgeNode, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    wav, length_s, ref = _inputs()
    play_s = min(length_s - 1.0, 25.0)
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}",
            ],
        )
        try:
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{node.http_port}/")
            await page.click("#start")
            await page.wait_for_function(
                "window.seminote.connection === 'connected'", timeout=15000
            )
            await page.wait_for_function(
                f"window.seminote.streamTime >= {play_s}", timeout=int(play_s * 1000) + 20000
            )
            st = await page.evaluate(
                "({onsets: window.seminote.onsets, t: window.seminote.streamTime,"
                " lat: window.seminote.latencies, err: window.seminote.error,"
                " notes: window.seminote.noteOns,"
                " shown: document.querySelectorAll('#note-list li').length})"
            )
            await page.screenshot(path=str(tmp_path / "browser.png"))
            if os.environ.get("UPDATE_SCREENSHOT"):
                shutil.copy(tmp_path / "browser.png", SHOT)
            await page.click("#stop")
        finally:
            await browser.close()
    assert st["err"] is None
    det = np.asarray([t for t in st["onsets"] if t > 0.05])  # the first frame starts mid-sound
    # the fast tier's notes, onset-only note F1 over the part of the file the stream covered,
    # mapped onto the file by a same-pitch histogram of offsets refined to 1 ms; the onsets are
    # scored at that offset (+-15 ms): onsets alone can lock one beat off in regular figuration
    truth = json.loads(_inputs_truth().read_text())["notes"]
    est_raw = [(float(t), int(p)) for t, p in st["notes"] if t > 0.05]
    nf1, noff = _align_notes(truth, est_raw, length_s, st["t"])
    f1, offset = _align(ref, det, length_s, st["t"], coarse=noff if est_raw else None)
    lat = np.percentile(st["lat"], [50, 95])
    print(
        f"browser: {len(det)} onsets in {st['t']:.1f} s, file offset {offset:.3f} s, "
        f"onset F1 {f1:.3f}; page latency p50 {lat[0]:.1f} ms p95 {lat[1]:.1f} ms; "
        f"{len(est_raw)} fast notes, note F1 {nf1:.3f} (offset {noff:.3f} s)"
    )
    assert f1 >= 0.9
    assert st["shown"] > 0
    assert nf1 >= 0.7
