"""Render random piano material with FluidSynth for training the note and onset models.

    python -m training.render --out training/data --minutes 60 [--seed 1]

Never touches the evaluation corpus. The pianos are the ones Debian ships that are *not* the
corpus's FluidR3_GM: TimGM6mb (MuseScore 1.3), MuseScore General (AKAI "Splendid Grand",
a Steinway D) and the csound GM bank. Each clip is 30 s of one of five generic textures
(block chords, melody over accompaniment, fast runs, random polyphony, repeated notes and
trills) with random dynamics, articulation, pedal and FluidSynth reverb, written as
``<n>.wav`` (44.1 kHz mono int16) and ``<n>.json`` (``notes`` = ``[onset_s, offset_s, pitch,
velocity]``, the same layout as the corpus ground truth).

Needs Debian ``fluidsynth timgm6mb-soundfont musescore-general-soundfont-small
csound-soundfont`` and ``pip install mido``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import wave
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import mido
import numpy as np

SOUNDFONTS = [  # (path, bank, program)
    ("/usr/share/sounds/sf2/TimGM6mb.sf2", 0, 0),
    ("/usr/share/sounds/sf2/TimGM6mb.sf2", 0, 1),
    ("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3", 0, 0),
    ("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3", 0, 1),
    ("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3", 8, 0),
    ("/usr/share/sounds/sf2/sf_GMbank.sf2", 0, 0),
    ("/usr/share/sounds/sf2/sf_GMbank.sf2", 0, 1),
]
CLIP_S = 30.0
RATE_HZ = 44_100

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


def make_clip(seed: int) -> tuple[list[Note], list[tuple[float, int]], tuple[str, int, int], bool]:
    """Random notes, pedal changes, soundfont and whether FluidSynth's reverb is on."""
    rng = np.random.default_rng(seed)
    texture = TEXTURES[seed % len(TEXTURES)]
    notes = texture(rng, _scale(rng), float(rng.uniform(35, 110)))
    notes = [n for n in notes if n[0] < CLIP_S - 0.3]
    pedal: list[tuple[float, int]] = []
    if rng.uniform() < 0.3:
        t = 0.5
        while t < CLIP_S:
            pedal += [(t, 127), (t + rng.uniform(0.8, 4), 0)]
            t = pedal[-1][0] + 0.05
    sf = SOUNDFONTS[int(rng.integers(0, len(SOUNDFONTS)))]
    return notes, pedal, sf, bool(rng.uniform() < 0.4)


def _write_midi(
    path: Path, notes: list[Note], pedal: list[tuple[float, int]], bank: int, program: int
) -> None:
    tpb = 1000  # ticks per beat at 60 bpm -> 1 ms ticks
    mid = mido.MidiFile(ticks_per_beat=tpb)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=1_000_000, time=0))
    ev: list[tuple[int, int, mido.Message]] = []
    ev.append((0, 0, mido.Message("control_change", control=0, value=bank, time=0)))
    ev.append((0, 0, mido.Message("program_change", program=program, time=0)))
    for on, off, p, v in notes:
        ev.append((round(on * 1000), 2, mido.Message("note_on", note=p, velocity=v, time=0)))
        ev.append((round(off * 1000), 1, mido.Message("note_off", note=p, velocity=0, time=0)))
    for t, val in pedal:
        ev.append(
            (round(t * 1000), 0, mido.Message("control_change", control=64, value=val, time=0))
        )
    ev.sort(key=lambda e: (e[0], e[1]))
    now = 0
    for tick, _, msg in ev:
        tr.append(msg.copy(time=tick - now))
        now = tick
    mid.save(str(path))


def render_one(seed: int, out_dir: Path) -> None:
    notes, pedal, (sf, bank, program), reverb = make_clip(seed)
    with tempfile.TemporaryDirectory() as tmp:
        mid = Path(tmp) / "clip.mid"
        raw = Path(tmp) / "clip.wav"
        _write_midi(mid, notes, pedal, bank, program)
        subprocess.run(
            [
                "fluidsynth",
                "-ni",
                "-q",
                "-g",
                "0.6",
                "-r",
                str(RATE_HZ),
                "-R",
                "1" if reverb else "0",
                "-C",
                "0",
                "-F",
                str(raw),
                sf,
                str(mid),
            ],
            check=True,
            capture_output=True,
        )
        with wave.open(str(raw), "rb") as w:
            ch = w.getnchannels()
            x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32)
    x = x.reshape(-1, ch).mean(axis=1)[: int(CLIP_S * RATE_HZ)]
    peak = float(np.abs(x).max()) or 1.0
    x = x / peak * 32767 * 10 ** (-1 / 20)
    with wave.open(str(out_dir / f"{seed}.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE_HZ)
        w.writeframes(np.round(x).astype(np.int16).tobytes())
    meta = {
        "notes": [[round(a, 4), round(b, 4), p, v] for a, b, p, v in sorted(notes)],
        "soundfont": Path(sf).name,
        "bank": bank,
        "program": program,
        "reverb": reverb,
    }
    (out_dir / f"{seed}.json").write_text(json.dumps(meta))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("training/data"))
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    n = int(a.minutes * 60 / CLIP_S)
    seeds = [a.seed * 100_000 + i for i in range(n)]
    with ProcessPoolExecutor(a.jobs) as ex:
        list(ex.map(render_one, seeds, [a.out] * n))
    print(f"rendered {n} clips of {CLIP_S:.0f} s to {a.out}")


if __name__ == "__main__":
    main()
