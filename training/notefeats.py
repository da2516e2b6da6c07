"""Pitch-grid spectrograms and the stream's own onsets of rendered clips, for the note classifier.

    python -m training.notefeats --data DIR/clips --out DIR/nfeats [--copies 2]

For every ``<n>.wav`` and copy ``k`` (0 = clean, further copies room-augmented exactly as in
:mod:`training.features`) writes ``<n>.<k>.npz``:

* ``grid`` (n_hops, N_GRID) float16: :func:`edge_server.dsp.pitchgrid.pitch_spectrum` of
  every hop's long frame, from the server's own resampler, frame ring and FFT;
* ``grid_short`` (n_hops, N_GRID) float16: the same of the last ``SHORT_SAMPLES`` of every
  hop's frame (:mod:`edge_server.dsp.onsetnotes`);
* ``onset_hops`` (n_onsets,) int64: the hops where a stream of this audio fires an onset
  (:class:`edge_server.dsp.analyzer.StreamAnalyzer`, default config, 1024-sample chunks);
* ``frame_end_s`` (n_hops,): stream time of the end of each hop.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from edge_server.dsp.analyzer import AnalyzerConfig, StreamAnalyzer
from edge_server.dsp.onsetnotes import SHORT_SAMPLES, short_magnitudes
from edge_server.dsp.pitchgrid import grid_map, pitch_spectrum
from training.features import hop_ends_s, missing_copies, stream_blocks

RATE_HZ = 44_100


def magnitudes(
    x: np.ndarray, *, input_rate_hz: int = RATE_HZ
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Long- and short-frame magnitudes of every hop and the hop end times, as a stream
    computes them."""
    blocks, delay_s = stream_blocks(x, input_rate_hz=input_rate_hz)
    mag = np.concatenate([m for _, m in blocks], axis=0)
    short = np.concatenate([short_magnitudes(f[:, -SHORT_SAMPLES:]) for f, _ in blocks], axis=0)
    return mag, short, hop_ends_s(mag.shape[0], delay_s)


def stream_onset_hops(x: np.ndarray, *, input_rate_hz: int = RATE_HZ) -> np.ndarray:
    """Hop indices where a stream of ``x`` (1024-sample chunks) fires an onset."""
    cfg = AnalyzerConfig()
    an = StreamAnalyzer(input_rate_hz=input_rate_hz, config=cfg)
    hops = []
    for i in range(0, x.shape[0], 1024):
        blk = an.process(x[i : i + 1024])
        ends = blk.onset_detected_at_s + an.delay_s
        hops += np.round(ends * cfg.analysis_rate_hz / cfg.hop_samples - 1).astype(int).tolist()
    return np.asarray(hops, dtype=np.int64)


def _one(args: tuple[Path, Path, int]) -> None:
    gm = grid_map(n_fft=1024, sample_rate_hz=22_050)
    gms = grid_map(n_fft=SHORT_SAMPLES, sample_rate_hz=22_050)
    for dst, xa in missing_copies(*args):
        mag, short, ends = magnitudes(xa)
        np.savez(
            dst,
            grid=pitch_spectrum(mag, gm).astype(np.float16),
            grid_short=pitch_spectrum(short, gms).astype(np.float16),
            onset_hops=stream_onset_hops(xa),
            frame_end_s=ends,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    # a clip is complete once its .json is written (after the .wav)
    wavs = sorted(w for w in a.data.glob("*.wav") if w.with_suffix(".json").exists())
    with ProcessPoolExecutor(a.jobs) as ex:
        list(ex.map(_one, [(w, a.out, a.copies) for w in wavs], chunksize=2))
    print(f"{len(wavs)} clips x {a.copies} copies -> {a.out}")


if __name__ == "__main__":
    main()
