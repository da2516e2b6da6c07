"""Fast-tier decisions on hand-made network outputs with known answers."""

from __future__ import annotations

import numpy as np

from edge_server.dsp.fastnotes import DecisionParams, FastNoteDecoder
from edge_server.dsp.notenet import N_KEYS, NetOutput

HOP_S = 128 / 22_050


def _out(n: int) -> NetOutput:
    return NetOutput(
        onset=np.zeros(n, np.float32),
        key_onset=np.zeros((n, N_KEYS), np.float32),
        key_on=np.zeros((n, N_KEYS), np.float32),
        velocity=np.full(n, 0.5, np.float32),
    )


def _rising(o: NetOutput) -> np.ndarray:
    """Short-frame bands (2 of them) that step up wherever the onset probability is high."""
    level = 5.0 * np.cumsum(o.onset > 0.5).astype(np.float32)
    return np.stack([level, level], axis=1)


def _decoder(**kw: float) -> FastNoteDecoder:
    return FastNoteDecoder(hop_s=HOP_S, time_shift_s=0.0, params=DecisionParams(**kw))  # type: ignore[arg-type]


def test_chord_is_three_notes_at_the_onset_time() -> None:
    o = _out(40)
    o.onset[10:14] = 0.9
    for key, start in ((39, 12), (43, 13), (46, 15)):  # C4 E4 G4, crossing at different hops
        o.key_onset[start : start + 6, key] = 0.8
        o.key_on[start:30, key] = 0.9
    d = _decoder(onset_offset_s=0.01).process(o, _rising(o), notes=True)
    assert d.onset_frames.tolist() == [10]
    assert sorted(n.midi_pitch for n in d.note_ons) == [60, 64, 67]
    onset_s = 11 * HOP_S - 0.01
    assert all(abs(n.onset_s - onset_s) < 1e-9 for n in d.note_ons)
    # each note ends off_frames hops after its key-on probability falls
    assert sorted(n.midi_pitch for n in d.note_offs) == [60, 64, 67]
    assert all(abs(n.offset_s - 33 * HOP_S) < 1e-9 for n in d.note_offs)


def test_repeated_note_is_two_notes_and_the_first_ends_at_the_second() -> None:
    o = _out(80)
    key = 48
    for start in (10, 50):
        o.onset[start : start + 3] = 0.9
        o.key_onset[start + 1 : start + 7, key] = 0.9
    o.key_on[11:80, key] = 0.9  # held through: the re-strike ends the first note
    d = _decoder().process(o, _rising(o), notes=True)
    assert d.onset_frames.tolist() == [10, 50]
    assert [n.midi_pitch for n in d.note_ons] == [69, 69]
    assert len(d.note_offs) == 1 and d.note_offs[0].note_id == d.note_ons[0].note_id


def test_onset_refractory_and_chunking_do_not_change_decisions() -> None:
    o = _out(60)
    o.onset[10:12] = 0.9
    o.onset[13:15] = 0.9  # 3 hops later: inside the 30 ms refractory time
    o.onset[30:33] = 0.9
    o.key_onset[31:36, 20] = 0.7
    o.key_onset[45:48, 70] = 0.95  # no onset open: an orphan above orphan_threshold
    whole = _decoder().process(o, _rising(o), notes=True)
    assert whole.onset_frames.tolist() == [10, 30]
    assert [n.midi_pitch for n in whole.note_ons] == [41, 91]

    dec = _decoder()
    ons = []
    frames = []
    for i in range(0, 60, 7):
        part = NetOutput(
            o.onset[i : i + 7], o.key_onset[i : i + 7], o.key_on[i : i + 7], o.velocity[i : i + 7]
        )
        d = dec.process(part, _rising(part), notes=True)
        ons += d.note_ons
        frames += d.onset_frames.tolist()
    assert frames == whole.onset_frames.tolist()
    assert ons == whole.note_ons


def test_state_round_trip_continues_exactly() -> None:
    o = _out(60)
    o.onset[10:13] = 0.9
    o.key_onset[11:16, 30] = 0.9
    o.key_on[11:50, 30] = 0.9
    a = _decoder()
    head = NetOutput(o.onset[:20], o.key_onset[:20], o.key_on[:20], o.velocity[:20])
    a.process(head, _rising(head), notes=True)
    b = _decoder()
    b.restore(a.state())
    tail = NetOutput(o.onset[20:], o.key_onset[20:], o.key_on[20:], o.velocity[20:])
    da, db = a.process(tail, _rising(tail), notes=True), b.process(tail, _rising(tail), notes=True)
    assert da.note_offs == db.note_offs and len(da.note_offs) == 1
    assert da.onset_frames.tolist() == db.onset_frames.tolist()


def test_an_onset_needs_the_short_frame_to_rise() -> None:
    o = _out(40)
    o.onset[10:13] = 0.9
    o.onset[25] = 0.95  # a lone echo of the network, where nothing rises
    bands = np.zeros((40, 2), np.float32)
    bands[10:, :] = 3.0  # the attack: +6 summed over both bands at hop 10, flat after
    d = _decoder().process(o, bands, notes=False)
    assert d.onset_frames.tolist() == [10]
