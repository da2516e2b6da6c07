"""The compact session logs keep the newest records, count the dropped ones, stay bounded."""

from edge_server.pipeline.eventlog import NoteLog, OnsetLog
from edge_server.pipeline.events import NoteAction, NoteEvent, NoteTier, Onset


def test_onset_log_is_a_bounded_ring() -> None:
    log = OnsetLog(capacity=5)
    for i in range(12):
        log.extend((Onset(i * 0.1, 0.25 * (i % 3), i * 0.1 + 0.01),))
    got = log.items()
    assert [round(o.time_s, 6) for o in got] == [0.7, 0.8, 0.9, 1.0, 1.1]
    assert got[0] == Onset(0.7000000000000001, 0.25, 0.7000000000000001 + 0.01)
    assert log.dropped == 7 and len(log) == 5
    assert log.nbytes <= 5 * 24


def test_a_retracted_onset_is_no_longer_listed_or_counted() -> None:
    log = OnsetLog(capacity=4)
    log.extend(tuple(Onset(t, 0.5, t + 0.01) for t in (0.1, 0.2, 0.3)))
    assert log.retract((0.2, 9.9)) == 1  # an unknown time is ignored
    assert [o.time_s for o in log.items()] == [0.1, 0.3] and len(log) == 2
    assert log.retract((0.2,)) == 0  # once
    log.extend(tuple(Onset(t, 0.5, t) for t in (0.4, 0.5, 0.6)))  # 0.1, then 0.2 overwritten
    assert [o.time_s for o in log.items()] == [0.3, 0.4, 0.5, 0.6] and len(log) == 4
    assert log.retract((0.6,)) == 1 and len(log) == 3


def test_note_log_round_trips_every_field() -> None:
    log = NoteLog(capacity=3)
    events = [
        NoteEvent(note_id=(1 << 40) + i, tier=tier, action=action, midi_pitch=21 + 17 * i,
                  onset_s=1.5 * i, offset_s=0.1 * i, velocity=0.3 + i / 10, confidence=0.9)
        for i, (tier, action) in enumerate(
            [(NoteTier.FAST, NoteAction.ON), (NoteTier.REFINED, NoteAction.CORRECT),
             (NoteTier.FAST, NoteAction.OFF), (NoteTier.REFINED, NoteAction.RETRACT)]
        )
    ]  # fmt: skip
    log.extend(tuple(events))
    assert log.items() == events[1:]
    assert log.dropped == 1 and log.nbytes <= 3 * 48
