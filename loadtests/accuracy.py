"""Onsets and both note tiers on the corpus, through a real gRPC server; latencies and DSP cost.

    python -m loadtests.accuracy [--corpus ../shared/corpus] [--out-dir out/accuracy]

For the clean and the noisy split: starts ``edge-server``, streams every file over gRPC with
``ONSETS,REFINED_NOTES`` (as fast as flow control allows; the analysis does not depend on
pacing), writes ``<stem>.onsets.txt``, ``<stem>.notes.csv`` (refined) and
``<stem>.fast.notes.csv`` exactly as ``edge-client eval`` does, scores them with the corpus's
own ``score.py`` (mir_eval, 50 ms), and measures over matched events (50 ms window):

* onset detection delay = stream time of the end of the hop that fired, minus the true onset;
* fast-note latency = stream time covered by the chunk whose result carried the note, minus
  the true onset (an upper bound: the note was decided at some hop inside that chunk);
* refined-note latency, the same for the refined event (CONFIRM/CORRECT/ON) of a note;
* DSP cost = CPU seconds per audio second of the session pipeline in one process, median of 3
  passes over the clean split: onsets only (no notes), the fast tier (onsets + fast notes),
  and the refined tier's Basic Pitch runs alone; and of the analysis alone, per stream, for
  one stream and for 64 streams batched as the server's batcher runs them.

With aubio installed (``make bench-accuracy`` installs it; :mod:`.aubio_baseline`), aubio
specflux is run in the same process too: its cost in the same repeats as ours, its onsets
scored the same way, so the cost comparison is a ratio measured side by side rather than
against the README's figure from another machine.

Prints one table beside the corpus README's reference rows, then one JSON line.
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
from typing import Any

import numpy as np

from clients.analysis_client import (
    AnalysisClient,
    ChunkResultEvent,
    StreamOptions,
    StreamSummaryEvent,
)
from clients.results import StreamResult
from clients.wav import WavAudio, read_wav
from edge_server.dsp.analyzer import AnalyzerConfig, StreamAnalyzer, analyze_many
from edge_server.dsp.basicpitch import WindowStitcher, run_windows
from edge_server.pipeline.session import Session, SessionLimits
from edge_server.pipeline.settings import AnalysisKind, Encoding, make_settings

from . import aubio_baseline

REFERENCE = [  # corpus README, public split: name, causal, onset clean, noisy, note F1, cost
    ("aubio 0.4.9 specflux", "yes", 0.997, 0.595, None, 0.0039),
    ("madmom RNN online", "yes", 0.977, 0.898, None, 0.0123),
    ("madmom CNN", "no", 0.989, 0.928, None, 0.0214),
    ("librosa onset_detect", "no", 0.779, 0.655, None, 0.0010),
    ("Basic Pitch (2 s windows)", "no", 0.885, 0.773, 0.798, 0.0269),
    ("madmom piano transcriber", "no", 0.939, 0.813, 0.631, 0.0122),
]


def _match(ref: list[float], est: list[float], window_s: float = 0.05) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of sorted event times within ``window_s``."""
    ref_s = sorted(range(len(ref)), key=ref.__getitem__)
    est_s = sorted(range(len(est)), key=est.__getitem__)
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


Streamed = tuple[StreamResult, list[tuple[float, Any]]]  # result, (stream time, note) arrivals


async def _stream_files(target: str, files: list[tuple[str, WavAudio]]) -> dict[str, Streamed]:
    out: dict[str, Streamed] = {}
    opts = StreamOptions(analyses=("ONSETS", "REFINED_NOTES"))
    async with AnalysisClient(target) as client:
        await client.wait_ready()
        for stem, audio in files:
            result = StreamResult()
            arrivals: list[tuple[float, Any]] = []
            async for ev in client.stream(audio, opts):
                result.add(ev)
                if isinstance(ev, ChunkResultEvent):
                    arrivals += [(ev.stream_time_s, n) for n in ev.notes]
                elif isinstance(ev, StreamSummaryEvent):
                    arrivals += [(ev.stream_time_s, n) for n in ev.final_notes]
            out[stem] = (result, arrivals)
    return out


def _measure(split: Path, streamed: dict[str, Streamed], out: Path) -> dict[str, list[float]]:
    m: dict[str, list[float]] = {"delay": [], "error": [], "fast": [], "refined": []}
    for stem, (result, arrivals) in streamed.items():
        result.write(out, stem)
        gt = json.loads((split / f"{stem}.json").read_text())
        ref = gt["onsets_s"]
        times = [o.time_s for o in result.onsets]
        for ri, ei in _match(ref, times):
            m["delay"].append(result.onsets[ei].detected_at_s - ref[ri])
            m["error"].append(times[ei] - ref[ri])
        notes = gt["notes"]
        for tier, actions in (("fast", ("ON",)), ("refined", ("ON", "CONFIRM", "CORRECT"))):
            want = "FAST" if tier == "fast" else "REFINED"
            for pitch in {int(n[2]) for n in notes}:
                r = [float(n[0]) for n in notes if int(n[2]) == pitch]
                got = [
                    (t, n)
                    for t, n in arrivals
                    if n.tier == want and n.action in actions and n.midi_pitch == pitch
                ]
                for ri, ei in _match(r, [n.onset_s for _, n in got]):
                    m[tier].append(got[ei][0] - r[ri])
    return m


def _score(corpus: Path, pred: Path, gt: Path, *, notes: bool = True) -> dict[str, float]:
    """Mean onset F1 and (``notes``) note F1 of a prediction dir, by the corpus's score.py."""
    text = subprocess.run(
        [sys.executable, str(corpus / "score.py"), str(pred), str(gt)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    out = {}
    f1 = r"\s+P=\S+\s+R=\S+\s+F1=([0-9.]+)"
    for key, head in (("onset", r"mean onset"), ("note", r"mean note \(onset-only\)")):
        found = re.search(head + f1, text)
        if found is not None:
            out[key] = float(found.group(1))
        elif key == "onset" or notes:
            raise RuntimeError(text)
    return out


def _fast_only(src: Path, dst: Path) -> Path:
    """A prediction dir whose notes.csv is the fast tier (score.py reads ``<id>.notes.csv``)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.glob("*.fast.notes.csv"):
        (dst / f.name.replace(".fast.notes.csv", ".notes.csv")).write_bytes(f.read_bytes())
    for f in src.glob("*.onsets.txt"):
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _session_cost(files: list[WavAudio], analyses: frozenset[AnalysisKind]) -> float:
    cpu = dur = 0.0
    for a in files:
        s = Session(
            settings=make_settings(
                sample_rate_hz=a.sample_rate_hz, encoding=Encoding(a.encoding),
                channels=a.channels, analyses=analyses, session_id="bench", client_name="",
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
    return cpu / dur


def _refined_model_cost(files: list[WavAudio]) -> float:
    """CPU-s per audio-s of the Basic Pitch windows alone (one onnxruntime thread)."""
    cpu = dur = 0.0
    for a in files:
        an = StreamAnalyzer(input_rate_hz=a.sample_rate_hz, config=AnalyzerConfig())
        x = np.frombuffer(a.data, dtype="<i2").astype(np.float32) / 32768.0
        y = np.concatenate([an.process(x[i : i + 8192]).samples for i in range(0, x.size, 8192)])
        wins = WindowStitcher().push(y, final=True)
        t0 = time.process_time()
        for _, w in wins:
            run_windows(w[None, :])
        cpu += time.process_time() - t0
        dur += a.duration_s
    return cpu / dur


def _dsp_cost(
    files: list[WavAudio], *, streams: int, notes: bool, seconds_s: float = 15.0
) -> float:
    """CPU-s per audio-s per stream of the analysis alone (no session, no transport), with
    ``streams`` streams (corpus files in turn) analysed together as the server's batcher does
    (:func:`analyze_many`, 1024-sample chunks)."""
    n = int(seconds_s * 44_100)
    xs = [np.frombuffer(a.data, dtype="<i2").astype(np.float32) / 32768.0 for a in files]
    sig = [xs[i % len(xs)][:n] for i in range(streams)]
    ans = [StreamAnalyzer(input_rate_hz=44_100, config=AnalyzerConfig(), notes=notes) for _ in sig]
    t0 = time.process_time()
    for i in range(0, n, 1024):
        analyze_many(ans, [x[i : i + 1024] for x in sig])
    return (time.process_time() - t0) / (seconds_s * streams)


def _costs(split: Path) -> dict[str, float]:
    files = [read_wav(p) for p in sorted(split.glob("*.wav"))]
    onsets_only = frozenset({AnalysisKind.ONSETS})
    fast = frozenset({AnalysisKind.ONSETS, AnalysisKind.NOTES})
    runs: dict[str, list[float]] = {"onsets": [], "fast": [], "refined_model": []}
    for k in ("dsp_fast_1", "dsp_fast_64", "dsp_onsets_1", "dsp_onsets_64"):
        runs[k] = []
    if aubio_baseline.available():
        runs["aubio"] = []
    for _ in range(3):  # side by side, repeated: medians
        if "aubio" in runs:
            runs["aubio"].append(aubio_baseline.cost(files))
        runs["onsets"].append(_session_cost(files, onsets_only))
        runs["fast"].append(_session_cost(files, fast))
        for notes, name in ((True, "fast"), (False, "onsets")):
            for streams in (1, 64):
                runs[f"dsp_{name}_{streams}"].append(_dsp_cost(files, streams=streams, notes=notes))
    runs["refined_model"].append(_refined_model_cost(files[:5]))
    return {k: float(np.median(v)) for k, v in runs.items()}


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


def _pct(v: list[float]) -> dict[str, float]:
    a = np.asarray(v) * 1000
    return {
        "median": round(float(np.median(a)), 1),
        "p95": round(float(np.percentile(a, 95)), 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--corpus",
        type=Path,
        default=Path(__file__).resolve().parents[1].parent / "shared" / "corpus",
    )
    p.add_argument("--out-dir", type=Path, default=Path("out/accuracy"))
    a = p.parse_args()
    splits = {"clean": a.corpus / "public", "noisy": a.corpus / "public" / "noisy"}
    files = {k: [(p.stem, read_wav(p)) for p in sorted(v.glob("*.wav"))] for k, v in splits.items()}

    async def both(target: str) -> dict[str, dict[str, Streamed]]:
        return {k: await _stream_files(target, v) for k, v in files.items()}

    streamed = asyncio.run(_with_server(both))
    meas = {k: _measure(splits[k], streamed[k], a.out_dir / k) for k in splits}
    refined = {k: _score(a.corpus, a.out_dir / k, splits[k]) for k in splits}
    fast = {
        k: _score(a.corpus, _fast_only(a.out_dir / k, a.out_dir / f"{k}.fast"), splits[k])
        for k in splits
    }
    cost = _costs(splits["clean"])
    aubio_f1 = (
        {
            k: _score(
                a.corpus,
                aubio_baseline.write_onsets(v, a.out_dir / f"{k}.aubio"),
                splits[k],
                notes=False,
            )
            for k, v in files.items()
        }
        if aubio_baseline.available()
        else None
    )
    print("| method | causal | onset F1 clean | onset F1 noisy | note F1 clean | note F1 noisy "
          "| cost CPU-s/s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, causal, fc, fn, nf, c in REFERENCE:
        note = f"{nf:.3f}" if nf is not None else "–"
        print(f"| {name} (reference) | {causal} | {fc:.3f} | {fn:.3f} | {note} | – | {c:.4f} |")
    print(
        f"| **seminote-edge fast tier** | yes | {fast['clean']['onset']:.3f} "
        f"| {fast['noisy']['onset']:.3f} | {fast['clean']['note']:.3f} "
        f"| {fast['noisy']['note']:.3f} | {cost['fast']:.4f} |"
    )
    print(
        f"| **seminote-edge refined tier** | ~2 s | {refined['clean']['onset']:.3f} "
        f"| {refined['noisy']['onset']:.3f} | {refined['clean']['note']:.3f} "
        f"| {refined['noisy']['note']:.3f} | +{cost['refined_model']:.4f} |"
    )
    if aubio_f1 is not None:
        print(
            "| aubio 0.4.9 specflux, measured in this run | yes "
            f"| {aubio_f1['clean']['onset']:.3f} | {aubio_f1['noisy']['onset']:.3f} | – | – "
            f"| {cost['aubio']:.4f} |"
        )
    summary = {
        "onset_f1": {k: refined[k]["onset"] for k in splits},
        "fast_note_f1": {k: fast[k]["note"] for k in splits},
        "refined_note_f1": {k: refined[k]["note"] for k in splits},
        "onset_detection_delay_ms": {k: _pct(meas[k]["delay"]) for k in splits},
        "onset_timing_error_ms": {k: _pct(meas[k]["error"]) for k in splits},
        "fast_note_latency_ms": {k: _pct(meas[k]["fast"]) for k in splits},
        "refined_note_latency_ms": {k: _pct(meas[k]["refined"]) for k in splits},
        "cpu_s_per_audio_s": {k: round(v, 5) for k, v in cost.items()},
    }
    for key in ("onset_detection_delay_ms", "fast_note_latency_ms", "refined_note_latency_ms"):
        print(f"{key}: {summary[key]}")
    print(
        "DSP only, CPU-s per audio-s per stream (1 stream / 64 streams batched): "
        f"fast tier {cost['dsp_fast_1']:.4f} / {cost['dsp_fast_64']:.4f}, "
        f"onsets {cost['dsp_onsets_1']:.4f} / {cost['dsp_onsets_64']:.4f}"
    )
    if aubio_f1 is not None:
        summary["aubio_onset_f1"] = {k: v["onset"] for k, v in aubio_f1.items()}
        print(
            "DSP cost / aubio specflux measured in this run: "
            f"fast tier {cost['dsp_fast_64'] / cost['aubio']:.2f} (64 batched), "
            f"{cost['dsp_fast_1'] / cost['aubio']:.2f} (1 stream); "
            f"onsets {cost['dsp_onsets_64'] / cost['aubio']:.2f} / "
            f"{cost['dsp_onsets_1'] / cost['aubio']:.2f}"
        )
    else:
        print("aubio not installed (make bench-accuracy installs it): no same-run aubio row")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
