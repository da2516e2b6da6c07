"""aubio's causal specflux onset detector, measured on this machine beside ours.

The corpus README gives aubio 0.4.9 specflux (2048-sample buffer, 512-sample hop) as
0.0039 CPU-s per audio-s on *its* 2-core machine; machines here differ by 1.2-1.7x from run to
run. This module runs aubio itself, in the same process and run as our measurement, so the
cost comparison is a ratio measured side by side, and re-scores its onsets with the same
``score.py``.

aubio (GPL-3.0) is a benchmark tool only: ``make bench-accuracy`` installs it into the venv
(``pip install --no-build-isolation aubio==0.4.9``, built from source against the venv's
numpy); the node never imports it. Without it the accuracy bench prints the README's figures
alone.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from clients.wav import WavAudio

BUF_SAMPLES = 2048
HOP_SAMPLES = 512


def _aubio() -> Any:
    import aubio  # type: ignore[import-not-found]  # optional, benchmark-only (module docstring)

    return aubio


def available() -> bool:
    """Whether aubio is importable."""
    try:
        _aubio()
    except ImportError:
        return False
    return True


def _samples(a: WavAudio) -> np.ndarray:
    if a.encoding != "PCM16_LE" or a.channels != 1:
        raise ValueError(f"aubio baseline reads mono PCM16 files, not {a.encoding} x{a.channels}")
    return np.frombuffer(a.data, dtype="<i2").astype(np.float32) / 32768.0


def onsets_s(a: WavAudio) -> tuple[list[float], float]:
    """aubio specflux onsets of one file, streamed hop by hop (causal), and the CPU seconds
    the detector took (process time around its calls only)."""
    aubio = _aubio()
    x = _samples(a)
    det = aubio.onset("specflux", BUF_SAMPLES, HOP_SAMPLES, a.sample_rate_hz)
    n = x.shape[0] // HOP_SAMPLES * HOP_SAMPLES
    hops = [np.ascontiguousarray(x[i : i + HOP_SAMPLES]) for i in range(0, n, HOP_SAMPLES)]
    out: list[float] = []
    t0 = time.process_time()
    for h in hops:
        if det(h)[0]:
            out.append(float(det.get_last_s()))
    return out, time.process_time() - t0


def cost(files: list[WavAudio]) -> float:
    """CPU-s per audio-s of aubio specflux over the files."""
    cpu = sum(onsets_s(a)[1] for a in files)
    audio_s = sum(len(a.data) / 2 / a.sample_rate_hz for a in files)
    return cpu / audio_s


def write_onsets(files: list[tuple[str, WavAudio]], out_dir: Path) -> Path:
    """``<stem>.onsets.txt`` per file (``score.py``'s format) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stem, a in files:
        times, _ = onsets_s(a)
        (out_dir / f"{stem}.onsets.txt").write_text("".join(f"{t:.6f}\n" for t in times))
    return out_dir
