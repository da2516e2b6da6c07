"""Onset accuracy, detection delay and DSP cost on the corpus, through a real gRPC server.

    python -m loadtests.accuracy [--corpus ../shared/corpus] [--out-dir out/accuracy]

For the clean and the noisy split: starts ``edge-server``, streams every file over gRPC
(as fast as flow control allows; the analysis does not depend on pacing), writes predictions,
scores them with the corpus's own ``score.py`` (mir_eval), and measures
* detection delay = stream time at which an onset is reported (end of the firing hop) minus
  the true onset, over matched onsets (50 ms window);
* timing error = reported onset time minus the true onset;
* DSP cost = CPU seconds of the session pipeline per audio second (in-process, same code,
  one process, median of 3 passes).
Prints a table beside the corpus README's reference rows, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from clients.analysis_client import AnalysisClient, ChunkResultEvent, StreamOptions
from clients.wav import WavAudio, read_wav
from edge_server.dsp.analyzer import AnalyzerConfig
from edge_server.pipeline.session import Session, SessionLimits
from edge_server.pipeline.settings import DEFAULT_ANALYSES, Encoding, make_settings

REFERENCE = [  # corpus README, public split
    ("aubio 0.4.9 specflux", "yes", 0.997, 0.595, 0.0039),
    ("madmom RNN online", "yes", 0.977, 0.898, 0.0123),
    ("madmom CNN", "no", 0.989, 0.928, 0.0214),
    ("librosa onset_detect", "no", 0.779, 0.655, 0.0010),
    ("Basic Pitch (2 s windows)", "no", 0.885, 0.773, 0.0269),
]


def _match(ref: list[float], est: list[float], window_s: float = 0.05) -> list[tuple[int, int]]:
    ref_s, est_s = (
        sorted(range(len(ref)), key=ref.__getitem__),
        sorted(range(len(est)), key=est.__getitem__),
    )
    i = j = 0
    pairs = []
    while i < len(ref_s) and j < len(est_s):
        d = est[est_s[j]] - ref[ref_s[i]]
        if abs(d) <= window_s:
            pairs.append((ref_s[i], est_s[j]))
            i += 1
            j += 1
        elif d < 0:
            j += 1
        else:
            i += 1
    return pairs


async def _stream_files(
    target: str, files: list[tuple[str, WavAudio]]
) -> dict[str, tuple[list[float], list[float]]]:
    """Per file: (reported onset times, reported-at stream times)."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    async with AnalysisClient(target) as client:
        await client.wait_ready()
        for stem, audio in files:
            times: list[float] = []
            detected: list[float] = []
            async for ev in client.stream(audio, StreamOptions(analyses=("ONSETS",))):
                if isinstance(ev, ChunkResultEvent):
                    times += [o.time_s for o in ev.onsets]
                    detected += [o.detected_at_s for o in ev.onsets]
            out[stem] = (times, detected)
    return out


def _write_and_measure(
    split: Path, results: dict[str, tuple[list[float], list[float]]], out: Path
) -> dict[str, list[float]]:
    out.mkdir(parents=True, exist_ok=True)
    delays: list[float] = []
    errors: list[float] = []
    for stem, (times, detected) in results.items():
        (out / f"{stem}.onsets.txt").write_text("".join(f"{t:.6f}\n" for t in times))
        ref = json.loads((split / f"{stem}.json").read_text())["onsets_s"]
        for ri, ei in _match(ref, times):
            delays.append(detected[ei] - ref[ri])
            errors.append(times[ei] - ref[ri])
    return {"delay": delays, "error": errors}


def _score(corpus: Path, pred: Path, gt: Path) -> float:
    text = subprocess.run(
        [sys.executable, str(corpus / "score.py"), str(pred), str(gt)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    m = re.search(r"mean onset\s+P=\S+\s+R=\S+\s+F1=([0-9.]+)", text)
    if m is None:
        raise RuntimeError(text)
    return float(m.group(1))


def _dsp_cost(split: Path) -> float:
    costs = []
    files = [read_wav(p) for p in sorted(split.glob("*.wav"))]
    for _ in range(3):
        cpu = dur = 0.0
        for a in files:
            s = Session(
                settings=make_settings(
                    sample_rate_hz=a.sample_rate_hz, encoding=Encoding(a.encoding),
                    channels=a.channels, analyses=DEFAULT_ANALYSES, session_id="bench",
                    client_name="",
                ),
                analyzer_config=AnalyzerConfig(),
                limits=SessionLimits(),
            )  # fmt: skip
            step = 1024 * a.frame_bytes
            chunks = [a.data[i : i + step] for i in range(0, len(a.data), step)]
            t0 = time.process_time()
            for seq, c in enumerate(chunks):
                s.process_chunk(seq=seq, data=c, capture_t_ns=0)
            cpu += time.process_time() - t0
            dur += a.duration_s
        costs.append(cpu / dur)
    return float(np.median(costs))


async def _with_server(fn):  # type: ignore[no-untyped-def]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge_server.cli", "serve", "--grpc-port", "0", "--http-port", "0",
        "--log-level", "WARNING", stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    port = int(line.split("grpc=")[1].split()[0])
    try:
        return await fn(f"127.0.0.1:{port}")
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--corpus",
        type=Path,
        default=Path(__file__).resolve().parents[1].parent / "shared" / "corpus",
    )
    p.add_argument("--out-dir", type=Path, default=Path("out/accuracy"))
    a = p.parse_args()
    clean, noisy = a.corpus / "public", a.corpus / "public" / "noisy"

    splits = {"clean": clean, "noisy": noisy}
    files = {k: [(p.stem, read_wav(p)) for p in sorted(v.glob("*.wav"))] for k, v in splits.items()}

    async def both(target: str) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
        return {k: await _stream_files(target, v) for k, v in files.items()}

    streamed = asyncio.run(_with_server(both))
    meas = {k: _write_and_measure(splits[k], streamed[k], a.out_dir / k) for k in splits}
    f_clean = _score(a.corpus, a.out_dir / "clean", clean)
    f_noisy = _score(a.corpus, a.out_dir / "noisy", noisy)
    cost = _dsp_cost(clean)
    d = np.asarray(meas["clean"]["delay"]) * 1000
    e = np.asarray(meas["clean"]["error"]) * 1000
    dn = np.asarray(meas["noisy"]["delay"]) * 1000
    print("| method | causal | onset F1 clean | onset F1 noisy | cost CPU-s/s |")
    print("|---|---|---|---|---|")
    for name, causal, fc, fn, c in REFERENCE:
        print(f"| {name} (reference) | {causal} | {fc:.3f} | {fn:.3f} | {c:.4f} |")
    print(
        "| **seminote-edge onsets (gRPC stream)** | yes "
        f"| {f_clean:.3f} | {f_noisy:.3f} | {cost:.4f} |"
    )
    print(
        f"detection delay (reported-at minus true onset), clean: median {np.median(d):.1f} ms, "
        f"p95 {np.percentile(d, 95):.1f} ms; noisy: median {np.median(dn):.1f} ms, "
        f"p95 {np.percentile(dn, 95):.1f} ms"
    )
    print(
        f"timing error (reported time minus true onset), clean: median {np.median(e):.1f} ms, "
        f"p5 {np.percentile(e, 5):.1f} ms, p95 {np.percentile(e, 95):.1f} ms"
    )
    summary = {
        "onset_f1_clean": f_clean,
        "onset_f1_noisy": f_noisy,
        "dsp_cpu_s_per_audio_s": round(cost, 5),
        "detection_delay_ms": {
            "median": round(float(np.median(d)), 2),
            "p95": round(float(np.percentile(d, 95)), 2),
        },
        "timing_error_ms": {"median": round(float(np.median(e)), 2)},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
