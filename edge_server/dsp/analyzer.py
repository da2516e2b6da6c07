"""One stream's causal analysis: resample, frame, FFT, onsets, fast notes and per-hop features."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from itertools import accumulate
from typing import Literal

import numpy as np
import numpy.typing as npt

from .features import rms_db, spectral_centroid_hz
from .fft import hann_window, rfft_magnitudes
from .netonsets import DecisionParams, NetOnsetDecoder, OnsetDecisions, decide_onsets_many
from .notedecoder import (
    NoteEvents,
    NoteOff,
    NoteOn,
    NoteParams,
    OnsetNoteDecoder,
    OnsetRetraction,
    decide_notes_many,
    key_levels,
)
from .notenet import NoteNet, load_weights, net_inputs
from .notenet import process_many as net_many
from .onset import OnsetDetector, OnsetParams, superflux_many
from .onsetnotes import SHORT_SAMPLES, load_onset_note_net
from .pitchgrid import grid_map
from .readonly import EMPTY_F32, EMPTY_F64, EMPTY_I64
from .resample import StreamingResampler, process_many
from .ringbuffer import FrameRing

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, kw_only=True)
class AnalyzerConfig:
    """Analysis geometry.

    Attributes
    ----------
    analysis_rate_hz : int
        Every stream is resampled to this rate (Hz) before analysis.
    frame_samples : int
        FFT frame at the analysis rate (1024 at 22.05 kHz = 46.4 ms).
    hop_samples : int
        Hop at the analysis rate (128 at 22.05 kHz = 5.8 ms).
    max_block_samples : int
        Largest block of analysis-rate samples handled in one vectorised step; bigger
        inputs are split (bounds the scratch buffers).
    onset : OnsetParams
        SuperFlux settings (the ``spectral_flux`` feature, and onsets with ``"superflux"``).
    onset_method : {"net", "superflux"}
        ``"net"``: onsets from the note network (trained on piano; default);
        ``"superflux"``: the non-learned SuperFlux peak picker.
    decisions : DecisionParams
        Thresholds on the onset network's output.
    notes : NoteParams
        Fast-tier note decisions (the onset key classifier's threshold, note ends).
    """

    analysis_rate_hz: int = 22_050
    frame_samples: int = 1024
    hop_samples: int = 128
    max_block_samples: int = 4096
    onset: OnsetParams = field(default_factory=OnsetParams)
    onset_method: Literal["net", "superflux"] = "net"
    decisions: DecisionParams = field(default_factory=DecisionParams)
    notes: NoteParams = field(default_factory=NoteParams)

    def __post_init__(self) -> None:
        if self.onset_method not in ("net", "superflux"):
            raise ValueError(
                f"onset_method must be 'net' or 'superflux', not {self.onset_method!r}"
            )

    @property
    def hop_s(self) -> float:
        return self.hop_samples / self.analysis_rate_hz

    @property
    def frame_s(self) -> float:
        return self.frame_samples / self.analysis_rate_hz


@dataclass(frozen=True)
class AnalysisBlock:
    """Everything produced by one :meth:`StreamAnalyzer.process` call.

    Attributes
    ----------
    onset_times_s : ndarray, shape (n_onsets,), float64
        Estimated onset times in the stream, s, ``>= 0``.
    onset_strengths : ndarray, shape (n_onsets,), float32
        ODF above the adaptive threshold, ``>= 0``.
    onset_detected_at_s : ndarray, shape (n_onsets,), float64
        Stream time of the end of the hop that fired, s.
    first_frame_time_s : float
        Stream time of the centre of the first frame in this block, s (may be negative for
        the frames that overlap the stream start).
    rms_db : ndarray, shape (n_frames,), float32
        Frame level, dBFS in ``[-120, 0]``.
    centroid_hz : ndarray, shape (n_frames,), float32
        Spectral centroid, Hz.
    flux : ndarray, shape (n_frames,), float32
        Onset detection function (SuperFlux), ``>= 0``.
    note_ons, note_offs : tuple
        Fast-tier note events (only when the analyzer was built with ``notes=True``).
    onset_retractions : tuple of OnsetRetraction
        Onsets of earlier blocks withdrawn by the fast tier (only with ``notes=True``): it
        heard no key struck there. An onset withdrawn within the block that found it is left
        out of ``onset_times_s`` instead.
    samples : ndarray, shape (n,), float32
        The block's audio at the analysis rate (for the refined tier).
    """

    onset_times_s: F64
    onset_strengths: F32
    onset_detected_at_s: F64
    first_frame_time_s: float
    rms_db: F32
    centroid_hz: F32
    flux: F32
    note_ons: tuple[NoteOn, ...] = ()
    note_offs: tuple[NoteOff, ...] = ()
    onset_retractions: tuple[OnsetRetraction, ...] = ()
    samples: F32 = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    @property
    def n_frames(self) -> int:
        return int(self.flux.shape[0])


class StreamAnalyzer:
    """Causal analysis of one mono stream, fed in chunks of any size.

    Output depends only on the samples, not on how they were chunked.

    Parameters
    ----------
    input_rate_hz : int
        Sample rate of the samples passed to :meth:`process`, Hz.
    config : AnalyzerConfig
        Geometry and detector settings.
    notes : bool
        Decode fast-tier notes (onsets and features are always computed).
    """

    def __init__(self, *, input_rate_hz: int, config: AnalyzerConfig, notes: bool = False) -> None:
        self.config = config
        c = config
        self._resampler = StreamingResampler(
            in_rate_hz=input_rate_hz, out_rate_hz=c.analysis_rate_hz
        )
        self._ring = FrameRing(
            frame_samples=c.frame_samples,
            hop_samples=c.hop_samples,
            max_write_samples=c.max_block_samples,
        )
        weights = load_weights()
        spec = weights.spec
        if (spec.sample_rate_hz, spec.frame_samples) != (c.analysis_rate_hz, c.frame_samples):
            raise ValueError("the note network was trained for another analysis rate or frame")
        self._spec = spec
        self._onset = OnsetDetector(
            sample_rate_hz=c.analysis_rate_hz,
            hop_samples=c.hop_samples,
            n_bands=int(spec.long_fb().shape[1]),
            params=c.onset,
        )
        self.notes = notes
        self._net = NoteNet(weights=weights)
        self._decoder = NetOnsetDecoder(hop_s=c.hop_s, params=c.decisions)
        self._notes = OnsetNoteDecoder(
            n_bins=c.frame_samples // 2 + 1,
            hop_samples=c.hop_samples,
            hop_s=c.hop_s,
            time_shift_s=self.delay_s,
            params=c.notes,
        )
        self.input_rate_hz = input_rate_hz
        self.samples_in = 0
        self.frames_done = 0

    @property
    def delay_s(self) -> float:
        """Resampler group delay, s (0 when no resampling)."""
        return 0.0 if self._resampler.identity else self._resampler.delay_s

    @property
    def algorithmic_latency_s(self) -> float:
        """Typical time from an onset to the end of the hop that reports it, s."""
        if self.config.onset_method == "superflux":
            return self.config.onset.time_offset_s + self.config.hop_s + self.delay_s
        return self.config.decisions.onset_offset_s + self.config.hop_s + self.delay_s

    @property
    def stream_time_s(self) -> float:
        return self.samples_in / self.input_rate_hz

    def state(self) -> dict[str, npt.NDArray[np.generic]]:
        """The whole analysis state as named arrays (see the parts' ``state`` methods).

        Restoring it into an analyzer built with the same rate, config and ``notes`` setting
        continues the stream exactly: the outputs are identical to never having stopped.
        Without ``notes`` the fast tier's state (its untouched 10-hop spectrum ring, 20.5 kB of
        zeros) is left out.
        """
        out: dict[str, npt.NDArray[np.generic]] = {
            "analyzer.counts": np.array([self.samples_in, self.frames_done], dtype=np.int64)
        }
        parts = {
            "resampler": self._resampler.state(),
            "ring": self._ring.state(),
            "onset": self._onset.state(),
            "net": self._net.state(),
            "decisions": self._decoder.state(),
        }
        if self.notes:
            parts["notes"] = self._notes.state()
        for name, part in parts.items():
            for key, value in part.items():
                out[f"{name}.{key}"] = value
        return out

    def restore(self, state: dict[str, npt.NDArray[np.generic]]) -> None:
        """Continue from :meth:`state`; raises ``ValueError`` when it does not fit."""

        def part(name: str) -> dict[str, npt.NDArray[np.generic]]:
            p = f"{name}."
            return {k[len(p) :]: v for k, v in state.items() if k.startswith(p)}

        try:
            self._resampler.restore(part("resampler"))
            self._ring.restore(part("ring"))
            self._onset.restore(part("onset"))
            self._net.restore(part("net"))
            self._decoder.restore(part("decisions"))
            if self.notes:  # a state saved without notes has no fast-tier part
                self._notes.restore(part("notes"))
            self.samples_in, self.frames_done = (int(v) for v in state["analyzer.counts"])
        except KeyError as e:
            raise ValueError(f"analyzer state lacks {e}") from None

    def process(self, samples: F32) -> AnalysisBlock:
        """Analyse the next samples.

        Parameters
        ----------
        samples : ndarray, shape (n,), float32
            Mono audio at ``input_rate_hz``, in ``[-1, 1]``, finite.

        Returns
        -------
        AnalysisBlock
            Onsets and features of every hop completed by these samples.
        """
        return analyze_many([self], [samples])[0]

    def _frame_end_s(self, frame: int) -> float:
        return (frame + 1) * self.config.hop_samples / self.config.analysis_rate_hz - self.delay_s

    def _frame_centre_s(self, frame: int) -> float:
        return self._frame_end_s(frame) - 0.5 * self.config.frame_s

    def _take_frames(self, y: F32) -> tuple[F32, int]:
        """Buffer ``y`` and return the hops it completes and the index of the first."""
        self._ring.write(y)
        frames = self._ring.take_frames()
        first = self.frames_done
        self.frames_done += int(frames.shape[0])
        return frames, first

    def _onsets(self, odf: F32, dec: OnsetDecisions) -> tuple[I64, F32, float]:
        """This block's onset hops, strengths and reported-time offset (either method)."""
        c = self.config
        superflux = c.onset_method == "superflux"
        ob = self._onset.pick(odf, pick=superflux)
        if superflux:
            return ob.onset_frames, ob.strengths, c.onset.time_offset_s
        return dec.onset_frames, dec.onset_strengths, c.decisions.onset_offset_s

    def _onset_times(self, frames: I64, offset_s: float) -> tuple[F64, F64]:
        """Reported onset times and the end times of the hops that fired, s."""
        if not frames.shape[0]:
            return EMPTY_F64, EMPTY_F64
        c = self.config
        ends = np.asarray((frames + 1) * (c.hop_samples / c.analysis_rate_hz) - self.delay_s)
        return np.asarray(np.maximum(ends - offset_s, 0.0), np.float64), ends.astype(np.float64)


def analyze_many(
    analyzers: Sequence[StreamAnalyzer], samples: Sequence[F32]
) -> list[AnalysisBlock]:
    """Analyse the next samples of several streams in one batched pass.

    The streams' hops share one FFT call per frame length, one filterbank product, one
    network pass per group of streams with the same hop count, and so on. Each stream's result
    is its own :meth:`StreamAnalyzer.process` result (up to float rounding of the larger
    products).

    Parameters
    ----------
    analyzers : sequence of StreamAnalyzer
        One per stream, distinct, all with the same config.
    samples : sequence of ndarray, shape (n_i,), float32
        Each stream's next mono samples at its ``input_rate_hz``, in ``[-1, 1]``, finite.

    Returns
    -------
    list of AnalysisBlock
        One per stream, in order.
    """
    if not analyzers:
        return []
    ys = process_many([a._resampler for a in analyzers], samples)
    step = analyzers[0].config.max_block_samples
    pieces: list[list[F32]] = []
    starts = []
    for a, x, y in zip(analyzers, samples, ys, strict=True):
        a.samples_in += int(x.shape[0])
        starts.append(a.frames_done)
        pieces.append([y[i : i + step] for i in range(0, max(int(y.shape[0]), 1), step)])
    parts: list[list[AnalysisBlock]] = [[] for _ in analyzers]
    for r in range(max(len(p) for p in pieces)):  # > 1 only for chunks over max_block_samples
        idx = [i for i, p in enumerate(pieces) if r < len(p)]
        done = _blocks([analyzers[i] for i in idx], [pieces[i][r] for i in idx])
        for i, blk in zip(idx, done, strict=True):
            parts[i].append(blk)
    return [
        _concat(p, a._frame_centre_s(f0)) for a, p, f0 in zip(analyzers, parts, starts, strict=True)
    ]


_MAX_FFT_FRAMES = 256


def _blocks(analyzers: list[StreamAnalyzer], ys: list[F32]) -> list[AnalysisBlock]:
    """One block of analysis-rate samples per stream (each at most ``max_block_samples``)."""
    c = analyzers[0].config
    spec = analyzers[0]._spec
    taken = [a._take_frames(y) for a, y in zip(analyzers, ys, strict=True)]
    counts = [int(f.shape[0]) for f, _ in taken]
    total = sum(counts)
    if total == 0:
        return [
            _empty(a._frame_centre_s(first), y)
            for a, (_, first), y in zip(analyzers, taken, ys, strict=True)
        ]
    frames = taken[0][0] if len(taken) == 1 else np.concatenate([f for f, _ in taken])
    mag = rfft_magnitudes(frames, hann_window(c.frame_samples), max_frames=_MAX_FFT_FRAMES)
    centroid = spectral_centroid_hz(mag, _bin_hz(c.frame_samples, c.analysis_rate_hz))
    x, long_bands = net_inputs(frames, mag, spec)
    rms = rms_db(frames)
    offs = list(accumulate(counts[:-1], initial=0))  # each stream's first row
    odf = np.zeros(total, dtype=np.float32)
    decs: list[OnsetDecisions | None] = [None] * len(analyzers)
    vel = np.zeros(total, dtype=np.float32)
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(counts):
        if n:
            groups.setdefault(n, []).append(i)
    n_long = long_bands.shape[1]
    for n, members in groups.items():
        rows = (
            np.asarray([offs[i] for i in members])[:, None] + np.arange(n)[None, :]
        )  # (streams, n) row indices
        g_odf = superflux_many([analyzers[i]._onset for i in members], long_bands[rows])
        odf[rows] = g_odf
        x[rows, -1] = g_odf
        xg = x[rows]
        g_out = net_many([analyzers[i]._net for i in members], xg)
        vel[rows] = g_out.velocity
        g_dec = decide_onsets_many(
            [analyzers[i]._decoder for i in members], g_out, xg[:, :, n_long:-1]
        )
        for i, d in zip(members, g_dec, strict=True):
            decs[i] = d
    picked: list[tuple[I64, F32, F64, F64]] = []
    for i, a in enumerate(analyzers):
        dec = decs[i]
        if dec is None:
            picked.append((EMPTY_I64, EMPTY_F32, EMPTY_F64, EMPTY_F64))
            continue
        sl = slice(offs[i], offs[i] + counts[i])
        hops, strengths, offset_s = a._onsets(odf[sl], dec)
        times, ends = a._onset_times(hops, offset_s)
        picked.append((hops, strengths, times, ends))
    notes: list[NoteEvents] = [([], [], [])] * len(analyzers)
    with_notes = [i for i, a in enumerate(analyzers) if a.notes and counts[i]]
    if with_notes:
        mags, tds, onsets = [], [], []
        lv_all = key_levels(mag, sample_rate_hz=c.analysis_rate_hz)  # one call per batch
        for i in with_notes:
            sl = slice(offs[i], offs[i] + counts[i])
            hops = picked[i][0]
            first = taken[i][1]
            mags.append(mag[sl])
            tds.append(frames[sl])
            onsets.append((hops, picked[i][2], vel[sl][hops - first]))
        done = decide_notes_many(
            [analyzers[i]._notes for i in with_notes],
            mags,
            tds,
            onsets,
            net=load_onset_note_net(),
            gm=grid_map(n_fft=c.frame_samples, sample_rate_hz=c.analysis_rate_hz),
            gm_short=grid_map(n_fft=SHORT_SAMPLES, sample_rate_hz=c.analysis_rate_hz),
            levels=[lv_all[offs[i] : offs[i] + counts[i]] for i in with_notes],
        )
        for i, ev in zip(with_notes, done, strict=True):
            notes[i] = ev
    blocks = []
    for i, (a, (_, first), y) in enumerate(zip(analyzers, taken, ys, strict=True)):
        if decs[i] is None:
            blocks.append(_empty(a._frame_centre_s(first), y))
            continue
        sl = slice(offs[i], offs[i] + counts[i])
        _, strengths, times, ends = picked[i]
        block = AnalysisBlock(
            onset_times_s=times,
            onset_strengths=strengths,
            onset_detected_at_s=ends,
            first_frame_time_s=a._frame_centre_s(first),
            rms_db=rms[sl],
            centroid_hz=centroid[sl],
            flux=odf[sl],
            note_ons=tuple(notes[i][0]),
            note_offs=tuple(notes[i][1]),
            onset_retractions=tuple(notes[i][2]),
            samples=y,
        )
        blocks.append(_settle(block))
    return blocks


def _settle(block: AnalysisBlock) -> AnalysisBlock:
    """Leave out the onsets withdrawn within the block that reports them (a long block, or
    parts concatenated): a client never sees those."""
    if not block.onset_retractions:
        return block
    own = set(block.onset_times_s.tolist())
    gone = {r.onset_s for r in block.onset_retractions} & own
    if not gone:
        return block
    keep = np.asarray([t not in gone for t in block.onset_times_s.tolist()], dtype=bool)
    return replace(
        block,
        onset_times_s=block.onset_times_s[keep],
        onset_strengths=block.onset_strengths[keep],
        onset_detected_at_s=block.onset_detected_at_s[keep],
        onset_retractions=tuple(r for r in block.onset_retractions if r.onset_s not in gone),
    )


@lru_cache(maxsize=8)
def _bin_hz(n_fft: int, rate_hz: int) -> F32:
    b = (np.arange(n_fft // 2 + 1) * (rate_hz / n_fft)).astype(np.float32)
    b.flags.writeable = False
    return b


def _empty(first_frame_time_s: float, samples: F32 | None = None) -> AnalysisBlock:
    f32 = np.zeros(0, dtype=np.float32)
    f64 = np.zeros(0, dtype=np.float64)
    y = f32 if samples is None else samples
    return AnalysisBlock(f64, f32, f64, first_frame_time_s, f32, f32, f32, samples=y)


def _concat(parts: list[AnalysisBlock], first_frame_time_s: float) -> AnalysisBlock:
    if len(parts) == 1:
        return parts[0]
    block = AnalysisBlock(
        onset_times_s=np.concatenate([p.onset_times_s for p in parts]),
        onset_strengths=np.concatenate([p.onset_strengths for p in parts]),
        onset_detected_at_s=np.concatenate([p.onset_detected_at_s for p in parts]),
        first_frame_time_s=first_frame_time_s,
        rms_db=np.concatenate([p.rms_db for p in parts]),
        centroid_hz=np.concatenate([p.centroid_hz for p in parts]),
        flux=np.concatenate([p.flux for p in parts]),
        note_ons=tuple(n for p in parts for n in p.note_ons),
        note_offs=tuple(n for p in parts for n in p.note_offs),
        onset_retractions=tuple(r for p in parts for r in p.onset_retractions),
        samples=np.concatenate([p.samples for p in parts]),
    )
    return _settle(block)
