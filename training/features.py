"""Augment rendered clips and extract network inputs with the server's own front end.

    python -m training.features --data training/data --out training/feats [--copies 2]

For every ``<n>.wav`` writes ``<n>.<k>.npz`` with ``x`` (n_frames, n_inputs) float16 — the
exact inputs :class:`edge_server.dsp.notenet.NoteNet` sees when streaming (same resampler,
frame ring, FFT and filterbanks) — and ``frame_end_s`` of each hop. Copy 0 is the clean
render; further copies are room-augmented: random gain, a synthetic room (exponentially
decaying noise, RT60 0.15–1.4 s, random wet/dry), additive noise (white, pink or brown,
SNR 3–35 dB, sometimes slowly modulated) and a random spectral tilt. These are generic
room/microphone conditions, drawn at random per copy, not fitted to any evaluation file.
"""

from __future__ import annotations

import argparse
import wave
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from edge_server.dsp.analyzer import AnalyzerConfig
from edge_server.dsp.fft import frames_rfft
from edge_server.dsp.notenet import InputSpec, net_inputs
from edge_server.dsp.onset import OnsetDetector, OnsetParams
from edge_server.dsp.resample import StreamingResampler
from edge_server.dsp.ringbuffer import FrameRing

RATE_HZ = 44_100


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return (x.astype(np.float32) / 32768.0).reshape(-1)


def _coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    spec *= f ** (-exponent / 2)
    y = np.fft.irfft(spec, n)
    return y / (np.std(y) + 1e-12)


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = x.shape[0]
    y = x.astype(np.float64)
    if rng.uniform() < 0.8:  # room
        rt60 = rng.uniform(0.15, 1.4)
        m = int(rt60 * 1.2 * RATE_HZ)
        t = np.arange(m) / RATE_HZ
        ir = rng.standard_normal(m) * np.exp(-6.9 * t / rt60)
        ir = np.convolve(ir, np.ones(8) / 8, mode="same") if rng.uniform() < 0.5 else ir
        pre = int(rng.uniform(0.003, 0.03) * RATE_HZ)
        ir[:pre] = 0
        ir /= np.sqrt(np.sum(ir**2)) + 1e-12
        wet = np.fft.irfft(np.fft.rfft(y, n + m) * np.fft.rfft(ir, n + m), n + m)[:n]
        drr_db = rng.uniform(-8, 10)
        y = y * 10 ** (drr_db / 20) * np.std(wet) / (np.std(y) + 1e-12) + wet
    if rng.uniform() < 0.3:  # tilt
        spec = np.fft.rfft(y)
        f = np.maximum(np.fft.rfftfreq(n, 1 / RATE_HZ), 20.0)
        spec *= (f / 1000.0) ** rng.uniform(-0.5, 0.3)
        y = np.fft.irfft(spec, n)
    if rng.uniform() < 0.85:  # noise
        noise = _coloured_noise(rng, n, float(rng.choice([0.0, 1.0, 1.0, 2.0])))
        if rng.uniform() < 0.3:
            env = _coloured_noise(rng, n, 2.0)
            noise *= np.exp(0.3 * env / (np.abs(env).max() + 1e-12))
        snr_db = rng.uniform(3, 35)
        active = y[np.abs(y) > 1e-4]
        p_sig = float(np.mean(active**2)) if active.size else 1e-6
        y = y + noise * np.sqrt(p_sig / 10 ** (snr_db / 10))
    y *= 10 ** (rng.uniform(-24, 0) / 20) / (np.abs(y).max() + 1e-12)
    return y.astype(np.float32)


def stream_blocks(
    x: np.ndarray, *, input_rate_hz: int = RATE_HZ
) -> tuple[list[tuple[np.ndarray, np.ndarray]], float]:
    """The server's front end over ``x``: per block, the hops' time-domain frames and their
    long-frame magnitudes (same resampler, frame ring and FFT as a stream), and the
    resampler delay (s) that places hop ends in stream time."""
    cfg = AnalyzerConfig()
    res = StreamingResampler(in_rate_hz=input_rate_hz, out_rate_hz=cfg.analysis_rate_hz)
    ring = FrameRing(
        frame_samples=cfg.frame_samples,
        hop_samples=cfg.hop_samples,
        max_write_samples=cfg.max_block_samples,
    )
    window = (np.hanning(cfg.frame_samples + 1)[:-1]).astype(np.float32)
    max_frames = cfg.max_block_samples // cfg.hop_samples + 1
    fft = frames_rfft(frame_samples=cfg.frame_samples, max_frames=max_frames)
    y = res.process(x)
    out = []
    for s in range(0, y.shape[0], cfg.max_block_samples):
        ring.write(y[s : s + cfg.max_block_samples])
        frames = ring.take_frames()
        if frames.shape[0]:
            out.append((frames.copy(), fft.magnitudes(frames, window).copy()))
    return out, 0.0 if res.identity else res.delay_s


def hop_ends_s(n_hops: int, delay_s: float) -> np.ndarray:
    """Stream time of the end of each hop, s."""
    cfg = AnalyzerConfig()
    return (np.arange(n_hops) + 1) * cfg.hop_samples / cfg.analysis_rate_hz - delay_s


def extract(x: np.ndarray, *, input_rate_hz: int = RATE_HZ) -> tuple[np.ndarray, np.ndarray]:
    """Network inputs and hop end times, exactly as a stream of ``x`` would produce them."""
    spec = InputSpec()
    blocks, delay_s = stream_blocks(x, input_rate_hz=input_rate_hz)
    feats = np.concatenate([net_inputs(f, m, spec)[0][:, :-1] for f, m in blocks], axis=0)
    return feats, hop_ends_s(feats.shape[0], delay_s)


def with_odf(x: np.ndarray) -> np.ndarray:
    """Stored inputs (without the ODF column) plus the SuperFlux ODF the analyzer computes
    from the same long bands: the network's full input."""
    n_long = InputSpec().long_fb().shape[1]
    det = OnsetDetector(
        sample_rate_hz=22_050, hop_samples=128, n_bands=n_long, params=OnsetParams()
    )
    odf = det.process(np.ascontiguousarray(x[:, :n_long]), pick=False).odf
    return np.concatenate([x, odf[:, None]], axis=1)


def missing_copies(wav: Path, out: Path, copies: int) -> Iterator[tuple[Path, np.ndarray]]:
    """``(out/<stem>.<k>.npz, audio)`` for each copy not written yet: copy 0 is the clip as
    rendered, the others room-augmented with a seed fixed by the clip and the copy."""
    x = read_wav(wav)
    for k in range(copies):
        dst = out / f"{wav.stem}.{k}.npz"
        if not dst.exists():
            yield dst, x if k == 0 else augment(x, np.random.default_rng([int(wav.stem), k]))


def _one(args: tuple[Path, Path, int]) -> None:
    for dst, xa in missing_copies(*args):
        feats, ends = extract(xa)
        np.savez(dst, x=feats.astype(np.float16), frame_end_s=ends)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("training/data"))
    ap.add_argument("--out", type=Path, default=Path("training/feats"))
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    wavs = sorted(a.data.glob("*.wav"))
    with ProcessPoolExecutor(a.jobs) as ex:
        list(ex.map(_one, [(w, a.out, a.copies) for w in wavs], chunksize=4))
    print(f"{len(wavs)} clips x {a.copies} copies -> {a.out}")


if __name__ == "__main__":
    main()
