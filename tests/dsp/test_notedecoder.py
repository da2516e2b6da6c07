"""Fast-note decisions: when onsets are classified, re-strikes, note ends, chunking, state.

The classifier is replaced by a stand-in with prescribed key probabilities (the real one is
tested on synthetic tones in ``test_notes_synthetic.py``); the spectra are synthetic.
"""

from __future__ import annotations

import numpy as np

from edge_server.dsp.notedecoder import (
    NoteParams,
    OnsetNoteDecoder,
    decide_notes_many,
    key_levels,
)
from edge_server.dsp.onsetnotes import DECISION_HOPS, N_ROWS, SHORT_SAMPLES
from edge_server.dsp.pitchgrid import grid_map

HOP_S = 128 / 22_050
N_BINS = 513
GM = grid_map(n_fft=1024, sample_rate_hz=22_050)
GMS = grid_map(n_fft=SHORT_SAMPLES, sample_rate_hz=22_050)


def _decide(decs, mags, onsets, net):  # type: ignore[no-untyped-def]
    frames = [np.zeros((m.shape[0], 1024), np.float32) for m in mags]
    levels = [key_levels(m, sample_rate_hz=22_050) for m in mags]
    return decide_notes_many(
        decs, mags, frames, onsets, net=net, gm=GM, gm_short=GMS, levels=levels
    )


class _Net:
    """Strikes the keys listed per call, in order; records what it was asked."""

    def __init__(self, keys_per_onset: list[list[int]]) -> None:
        self.keys = list(keys_per_onset)
        self.calls: list[int] = []

    def predict(self, x: np.ndarray) -> np.ndarray:
        assert x.shape[1:] == (N_ROWS, 336)
        self.calls.append(int(x.shape[0]))
        p = np.zeros((x.shape[0], 88), np.float32)
        for i in range(x.shape[0]):
            p[i, self.keys.pop(0)] = 0.9
        return p


def _tone_mag(n: int, key: int, level: float) -> np.ndarray:
    """Magnitude frames with energy at a key's fundamental bin (22.05 kHz, 1024 FFT)."""
    f0 = 440 * 2 ** ((key + 21 - 69) / 12)
    m = np.zeros((n, N_BINS), np.float32)
    m[:, int(round(f0 / (22_050 / 1024)))] = level
    return m


def _run(dec, net, mag, onset_hops, chunk):  # type: ignore[no-untyped-def]
    ons, offs, gone = [], [], []
    for s in range(0, mag.shape[0], chunk):
        m = mag[s : s + chunk]
        h = np.asarray([x for x in onset_hops if s <= x < s + chunk], np.int64)
        t = (h + 1) * HOP_S
        v = np.full(h.shape, 0.5, np.float32)
        ((o, f, r),) = _decide([dec], [m], [(h, t, v)], net)
        ons += o
        offs += f
        gone += r
    return ons, offs, gone


def _dec(**kw: float) -> OnsetNoteDecoder:
    return OnsetNoteDecoder(
        n_bins=N_BINS,
        hop_samples=128,
        hop_s=HOP_S,
        time_shift_s=0.0,
        params=NoteParams(**kw),  # type: ignore[arg-type]
    )


def test_notes_are_decided_at_the_decision_hop_with_the_onset_time() -> None:
    mag = _tone_mag(60, 39, 10.0)
    ons, _, _ = _run(_dec(), _Net([[39, 43]]), mag, [10], chunk=4)
    assert [n.midi_pitch for n in ons] == [60, 64]
    assert all(abs(n.onset_s - 11 * HOP_S) < 1e-9 for n in ons)
    assert all(abs(n.detected_at_s - (11 + DECISION_HOPS) * HOP_S) < 1e-9 for n in ons)


def test_an_onset_in_which_no_key_was_struck_is_withdrawn_at_its_decision_hop() -> None:
    mag = _tone_mag(40, 39, 30.0)
    ons, _, gone = _run(_dec(), _Net([[39], []]), mag, [4, 20], chunk=4)
    assert [n.onset_s for n in ons] == [5 * HOP_S]
    assert [(r.onset_s, r.key_prob) for r in gone] == [(21 * HOP_S, 0.0)]
    # 0 never withdraws; a key at 0.9 confirms the onset even when it is not reported (re-arm)
    _, _, gone = _run(_dec(onset_confirm_threshold=0.0), _Net([[39], []]), mag, [4, 20], chunk=4)
    assert gone == []
    _, _, gone = _run(_dec(), _Net([[39], [39]]), mag, [4, 6], chunk=4)
    assert gone == []


def test_a_restruck_key_ends_its_previous_note_and_rearm_blocks_doubles() -> None:
    mag = _tone_mag(80, 39, 10.0)
    net = _Net([[39], [39], [39]])
    ons, offs, _ = _run(_dec(), net, mag, [10, 13, 40], chunk=4)
    # the onset 3 hops after the first is inside rearm_s (60 ms): not reported again
    assert [round(n.onset_s / HOP_S) for n in ons] == [11, 41]
    assert len(offs) == 1 and offs[0].note_id == ons[0].note_id


def test_a_note_ends_when_its_level_falls() -> None:
    mag = np.concatenate([_tone_mag(30, 50, 50.0), _tone_mag(30, 50, 0.0)])
    ons, offs, _ = _run(_dec(), _Net([[50]]), mag, [5], chunk=4)
    assert len(ons) == 1 and len(offs) == 1
    assert 30 * HOP_S <= offs[0].offset_s <= 34 * HOP_S


def test_chunking_and_restore_do_not_change_the_events() -> None:
    mag = np.concatenate([_tone_mag(40, 45, 30.0), _tone_mag(40, 45, 0.0)])
    onsets, keys = [3, 20, 33, 50], [[45], [47, 52], [45], [60]]
    whole = _run(_dec(), _Net([list(k) for k in keys]), mag, onsets, chunk=80)
    small = _run(_dec(), _Net([list(k) for k in keys]), mag, onsets, chunk=3)
    assert whole == small
    a, net = _dec(), _Net([list(k) for k in keys])
    first = _run(a, net, mag[:35], onsets, chunk=7)
    b = _dec()
    b.restore(a.state())
    rest = [x for x in onsets if x >= 35]
    ons, offs = [], []
    for s in range(35, 80, 5):
        h = np.asarray([x for x in rest if s <= x < s + 5], np.int64)
        ((o, f, _),) = _decide(
            [b], [mag[s : s + 5]], [(h, (h + 1) * HOP_S, np.full(h.shape, 0.5, np.float32))], net
        )
        ons += o
        offs += f
    assert (first[0] + ons, first[1] + offs) == whole[:2]


def test_many_streams_share_one_classifier_call() -> None:
    net = _Net([[40], [41], [42]])
    decs = [_dec() for _ in range(3)]
    mags = [_tone_mag(12, 40, 5.0) for _ in range(3)]
    h = np.asarray([2], np.int64)
    onsets = [(h, (h + 1) * HOP_S, np.full(1, 0.5, np.float32))] * 3
    out = _decide(decs, mags, onsets, net)
    assert net.calls == [3]
    assert [[n.midi_pitch for n in ons] for ons, _, _ in out] == [[61], [62], [63]]


def test_streams_decided_together_end_their_notes_as_when_decided_alone() -> None:
    """Streams with and without onsets due, and with different hop counts, decided in one
    call (one classifier call, levels of the whole batch) do not change each other's
    events."""
    mags = [
        np.concatenate([_tone_mag(8 + 4 * i, 40 + i, 30.0), _tone_mag(20, 40 + i, 0.0)])
        for i in range(3)
    ]
    frames = [np.zeros((m.shape[0], 1024), np.float32) for m in mags]
    hops = [np.asarray(h, np.int64) for h in ([2], [2, 9], [])]
    onsets = [(h, (h + 1) * HOP_S, np.full(h.shape, 0.5, np.float32)) for h in hops]
    strikes = [[[40]], [[41], [45]], []]

    def decide(streams: list[int]):  # type: ignore[no-untyped-def]
        net = _Net([k for i in streams for k in strikes[i]])
        return decide_notes_many(
            [_dec() for _ in streams], [mags[i] for i in streams], [frames[i] for i in streams],
            [onsets[i] for i in streams], net=net, gm=GM, gm_short=GMS,
            levels=np.split(  # one key_levels call over the batch, as the analyzer makes it
                key_levels(np.concatenate([mags[i] for i in streams]), sample_rate_hz=22_050),
                np.cumsum([mags[i].shape[0] for i in streams])[:-1],
            ),
        )  # fmt: skip

    together = decide([0, 1, 2])
    alone = [decide([i])[0] for i in range(3)]
    assert together == alone
    assert [len(offs) for _, offs, _ in together] == [1, 2, 0]
