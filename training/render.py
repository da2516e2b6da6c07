"""Render random piano material for training the onset network and the key classifier.

    python -m training.render --out DIR/clips --minutes 240 [--seed 3] [--held-out]

Never touches the evaluation corpus. Each clip is 30 s of one of seven generic textures
(block chords, melody over accompaniment, fast runs, random polyphony, repeated notes and
trills, four-voice chorale-like writing, soft figuration under loud held notes) with random
dynamics, articulation and pedal, on one of the pianos of :mod:`training.pianos` (none of
them the corpus's FluidR3_GM), written as ``<n>.wav`` (44.1 kHz mono int16) and
``<n>.json`` (``notes`` = ``[onset_s, offset_s, pitch, velocity]``, the same layout as the
corpus ground truth, and ``piano``).
"""

from __future__ import annotations

import argparse
import json
import wave
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from training.pianos import PIANOS, RATE_HZ

CLIP_S = 30.0

Note = tuple[float, float, int, int]


def _scale(rng: np.random.Generator) -> list[int]:
    root = int(rng.integers(0, 12))
    steps = [
        [0, 2, 4, 5, 7, 9, 11],
        [0, 2, 3, 5, 7, 8, 10],
        [0, 2, 3, 5, 7, 8, 11],
        list(range(12)),
    ][int(rng.integers(0, 4))]
    return [p for p in range(21, 109) if (p - root) % 12 in steps]


def _vel(rng: np.random.Generator, base: float) -> int:
    return int(np.clip(rng.normal(base, 12), 8, 127))


def _dur(rng: np.random.Generator, ioi: float, style: float) -> float:
    # style 0 = staccato, 1 = legato (overlapping the next note)
    return float(max(0.04, ioi * rng.uniform(0.3 + 0.8 * style, 0.6 + 1.2 * style)))


def _chords(rng: np.random.Generator, scale: list[int], base_vel: float) -> list[Note]:
    notes: list[Note] = []
    t = 0.5
    leg = rng.uniform()
    while t < CLIP_S - 0.5:
        ioi = float(rng.choice([rng.uniform(0.12, 0.4), rng.uniform(0.3, 1.5)]))
        k = int(rng.integers(2, 7))
        lo = int(rng.integers(24, 80))
        pool = [p for p in scale if lo <= p <= lo + int(rng.integers(12, 30))]
        if len(pool) < 2:
            t += ioi
            continue
        chord = rng.choice(pool, size=min(k, len(pool)), replace=False)
        spread = rng.uniform(0, 0.025)
        for p in chord:
            on = t + rng.uniform(0, spread)
            notes.append((on, on + _dur(rng, ioi, leg), int(p), _vel(rng, base_vel)))
        t += ioi
    return notes


def _melody_accomp(rng: np.random.Generator, scale: list[int], base_vel: float) -> list[Note]:
    notes: list[Note] = []
    beat = rng.uniform(0.25, 0.8)
    leg = rng.uniform()
    t = 0.5
    idx = int(rng.integers(len(scale) // 2, len(scale) - 8))
    while t < CLIP_S - 0.5:
        sub = int(rng.choice([1, 2, 2, 3, 4]))
        for i in range(sub):
            idx = int(np.clip(idx + rng.integers(-3, 4), len(scale) // 3, len(scale) - 1))
            on = t + i * beat / sub
            notes.append((on, on + _dur(rng, beat / sub, leg), scale[idx], _vel(rng, base_vel + 8)))
        bass = int(rng.integers(28, 55))
        pattern = int(rng.integers(0, 3))
        if pattern == 0:  # bass + chord
            notes.append((t, t + _dur(rng, beat, leg), bass, _vel(rng, base_vel)))
            for p in (bass + 12 + 4, bass + 12 + 7):
                notes.append(
                    (
                        t + beat / 2,
                        t + beat / 2 + _dur(rng, beat / 2, leg),
                        p,
                        _vel(rng, base_vel - 10),
                    )
                )
        elif pattern == 1:  # alberti-like
            for i, p in enumerate((bass, bass + 7, bass + 4, bass + 7)):
                on = t + i * beat / 4
                notes.append((on, on + _dur(rng, beat / 4, leg), p + 12, _vel(rng, base_vel - 8)))
        else:
            notes.append((t, t + _dur(rng, beat, leg), bass, _vel(rng, base_vel)))
        t += beat
    return notes


def _runs(rng: np.random.Generator, scale: list[int], base_vel: float) -> list[Note]:
    notes: list[Note] = []
    t = 0.5
    while t < CLIP_S - 1:
        rate = rng.uniform(6, 16)
        n = int(rng.integers(6, 24))
        idx = int(rng.integers(5, len(scale) - 5))
        step = int(rng.choice([-2, -1, 1, 2, 3]))
        leg = rng.uniform()
        for _ in range(n):
            idx = int(np.clip(idx + step, 0, len(scale) - 1))
            notes.append((t, t + _dur(rng, 1 / rate, leg), scale[idx], _vel(rng, base_vel)))
            t += float(1 / rate * rng.uniform(0.9, 1.1))
        t += rng.uniform(0.1, 0.8)
    return notes


def _random_poly(rng: np.random.Generator, scale: list[int], base_vel: float) -> list[Note]:
    notes: list[Note] = []
    rate = rng.uniform(2, 10)
    t = 0.5
    while t < CLIP_S - 0.5:
        p = int(rng.integers(21, 109)) if rng.uniform() < 0.3 else int(rng.choice(scale))
        d = float(rng.choice([rng.uniform(0.05, 0.3), rng.uniform(0.3, 2.5)]))
        notes.append((t, t + d, p, _vel(rng, base_vel)))
        t += float(rng.exponential(1 / rate)) if rng.uniform() > 0.2 else 0.0
    return notes


def _repeats(rng: np.random.Generator, scale: list[int], base_vel: float) -> list[Note]:
    notes: list[Note] = []
    t = 0.5
    while t < CLIP_S - 1:
        a = int(rng.choice(scale))
        b = a + int(rng.choice([0, 1, 2, 12]))
        rate = rng.uniform(4, 14)
        for i in range(int(rng.integers(4, 16))):
            p = a if i % 2 == 0 else b
            notes.append((t, t + 0.8 / rate, p, _vel(rng, base_vel)))
            t += 1 / rate
        t += rng.uniform(0.1, 0.6)
    return notes


TEXTURES = [_chords, _melody_accomp, _runs, _random_poly, _repeats]


def _chorale(rng: np.random.Generator, scale: list[int], base_vel: float) -> list[Note]:
    """Four voices in block chords; each beat only some voices move (the others hold)."""
    notes: list[Note] = []
    beat = rng.uniform(0.3, 0.9)
    centres = [int(rng.integers(36, 48)), int(rng.integers(48, 57)), int(rng.integers(55, 64)),
               int(rng.integers(62, 74))]  # fmt: skip
    voices = [min(scale, key=lambda p, c=c: abs(p - c)) for c in centres]
    starts = [0.5] * 4
    t = 0.5
    while t < CLIP_S - 1:
        t += beat * float(rng.choice([1, 1, 1, 2, 0.5]))
        for v in range(4):
            if rng.uniform() < 0.35 and t < CLIP_S - 1:
                continue  # held over this beat
            notes.append((starts[v], t - rng.uniform(0.0, 0.04), voices[v], _vel(rng, base_vel)))
            i = int(np.argmin([abs(p - voices[v]) for p in scale])) + int(rng.integers(-2, 3))
            cand = scale[int(np.clip(i, 0, len(scale) - 1))]
            if abs(cand - centres[v]) <= 8:
                voices[v] = cand
            starts[v] = t
    return [n for n in notes if n[1] > n[0] + 0.03]


def _figuration(rng: np.random.Generator, scale: list[int], base_vel: float) -> list[Note]:
    """Soft fast figures (arpeggios, broken chords) under or over loud long notes."""
    notes: list[Note] = []
    t = 0.5
    rate = rng.uniform(6, 14)
    loud, soft = base_vel + rng.uniform(10, 40), base_vel - rng.uniform(10, 40)
    while t < CLIP_S - 1.5:
        span = rng.uniform(0.8, 2.5)
        lo = int(rng.integers(33, 60))
        held = [p for p in scale if lo <= p <= lo + 7][:2]
        for p in held:
            notes.append((t, t + span, p, _vel(rng, loud)))
        top = int(rng.integers(lo + 10, min(lo + 36, 100)))
        pool = [p for p in scale if lo + 5 <= p <= top] or [top]
        chord = sorted(rng.choice(pool, size=min(4, len(pool)), replace=False).tolist())
        pattern = chord + chord[-2:0:-1] if rng.uniform() < 0.5 else chord
        u, i = t + 1 / rate, 0
        while u < t + span - 0.05:
            p = int(pattern[i % len(pattern)])
            notes.append((u, u + 0.9 / rate * rng.uniform(0.8, 3), p, _vel(rng, soft)))
            u += 1 / rate
            i += 1
        t += span
    return notes


TEXTURES = [_chords, _melody_accomp, _runs, _random_poly, _repeats, _chorale, _figuration]


def make_clip(seed: int) -> tuple[list[Note], list[tuple[float, int]], int]:
    """Random notes, pedal changes and the index of the piano in ``PIANOS``."""
    rng = np.random.default_rng(seed)
    texture = TEXTURES[seed % len(TEXTURES)]
    notes = texture(rng, _scale(rng), float(rng.uniform(35, 110)))
    notes = [n for n in notes if n[0] < CLIP_S - 0.3 and 21 <= n[2] <= 108]
    pedal: list[tuple[float, int]] = []
    if rng.uniform() < 0.3:
        t = 0.5
        while t < CLIP_S:
            pedal += [(t, 127), (t + rng.uniform(0.8, 4), 0)]
            t = pedal[-1][0] + 0.05
    return notes, pedal, int(rng.integers(0, len(PIANOS)))


def render_one(seed: int, out_dir: Path, piano: int | None = None) -> None:
    if (out_dir / f"{seed}.json").exists():
        return
    notes, pedal, which = make_clip(seed)
    which = which if piano is None else piano
    rng = np.random.default_rng([seed, 7])
    x = PIANOS[which].render(notes, pedal, CLIP_S, rng)[: int(CLIP_S * RATE_HZ)]
    x = np.pad(x, (0, max(0, int(CLIP_S * RATE_HZ) - len(x))))
    peak = float(np.abs(x).max()) or 1.0
    x = x / peak * 32767 * 10 ** (-1 / 20)
    with wave.open(str(out_dir / f"{seed}.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE_HZ)
        w.writeframes(np.round(x).astype(np.int16).tobytes())
    meta = {
        "notes": [[round(a, 4), round(b, 4), p, v] for a, b, p, v in sorted(notes)],
        "piano": PIANOS[which].name,
    }
    (out_dir / f"{seed}.json").write_text(json.dumps(meta))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("training/data"))
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument(
        "--textures", default="", help="comma-separated texture names (default: all, in turn)"
    )
    ap.add_argument(
        "--held-out",
        action="store_true",
        help="only the clips numbered ...0 (held out of training; what training.tune_notes "
        "streams)",
    )
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    n = int(a.minutes * 60 / CLIP_S)
    names = [t.__name__.strip("_") for t in TEXTURES]
    want = set(a.textures.split(",")) if a.textures else set(names)
    if not want <= set(names):
        ap.error(f"--textures: known textures are {', '.join(names)}")
    seeds = [
        s
        for s in range(a.seed * 100_000, a.seed * 100_000 + 100 * n)
        if names[s % len(TEXTURES)] in want
    ][:n]
    if a.held_out:
        seeds = [s for s in seeds if s % 10 == 0]
        n = len(seeds)
    with ProcessPoolExecutor(a.jobs) as ex:
        list(ex.map(render_one, seeds, [a.out] * n))
    print(f"rendered {n} clips of {CLIP_S:.0f} s to {a.out}")


if __name__ == "__main__":
    main()
