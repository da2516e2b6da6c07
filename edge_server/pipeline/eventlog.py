"""Bounded, compact logs of a session's onsets and note events (for GetSession).

A session lives for minutes to hours; its logs must not grow with it. Each log is a ring of
fixed-size binary records in a ``bytearray`` that grows (by doubling) up to ``capacity``
records and then overwrites the oldest: 24 bytes per onset and 48 per note event, against
~130 and ~200 bytes as Python objects. The number of records dropped from the front is
counted. An onset withdrawn later (:meth:`OnsetLog.retract`) stays in the ring, marked, and
is no longer listed or counted.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from .events import NoteAction, NoteEvent, NoteTier, Onset

T = TypeVar("T")

_ONSET = struct.Struct("<dfd?3x")  # time_s, strength, detected_at_s, retracted
#: how far back (records) a retraction looks for its onset: it comes ~30 ms after it
_RETRACT_LOOKBACK = 64
_NOTE = struct.Struct("<qBBBxdddd")  # id, tier, action, pitch, onset_s, offset_s, vel, conf
_TIERS = list(NoteTier)
_ACTIONS = list(NoteAction)


class _Ring(Generic[T]):
    def __init__(self, *, capacity: int, rec: struct.Struct) -> None:
        if capacity < 1:
            raise ValueError(f"log capacity must be >= 1, not {capacity}")
        self.capacity = capacity
        self._rec = rec
        self._buf = bytearray()
        self._start = 0  # index of the oldest record once the ring is full
        self._n = 0
        self.total = 0

    def _put(self, *fields: object) -> None:
        size = self._rec.size
        if self._n < self.capacity:
            if (self._n + 1) * size > len(self._buf):
                grow = max(size, min(len(self._buf), (self.capacity - self._n) * size))
                self._buf.extend(bytes(grow))
            self._rec.pack_into(self._buf, self._n * size, *fields)
            self._n += 1
        else:
            self._rec.pack_into(self._buf, self._start * size, *fields)
            self._start = (self._start + 1) % self.capacity
        self.total += 1

    def _records(self) -> Iterator[tuple[Any, ...]]:
        size = self._rec.size
        for i in range(self._n):
            yield self._rec.unpack_from(self._buf, ((self._start + i) % self.capacity) * size)

    def __len__(self) -> int:
        return self._n

    @property
    def dropped(self) -> int:
        return self.total - self._n

    @property
    def nbytes(self) -> int:
        return len(self._buf)


class OnsetLog(_Ring[Onset]):
    def __init__(self, *, capacity: int) -> None:
        super().__init__(capacity=capacity, rec=_ONSET)

    def extend(self, onsets: tuple[Onset, ...]) -> None:
        for o in onsets:
            self._put(o.time_s, o.strength, o.detected_at_s, False)

    def retract(self, times_s: tuple[float, ...]) -> int:
        """Mark the logged onsets at these times (reported earlier) as withdrawn; return how
        many were found among the newest records."""
        found = 0
        size = self._rec.size
        for t in times_s:
            for i in range(self._n - 1, max(self._n - _RETRACT_LOOKBACK, 0) - 1, -1):
                at = ((self._start + i) % self.capacity) * size
                rec = self._rec.unpack_from(self._buf, at)
                if rec[0] == t and not rec[3]:
                    self._rec.pack_into(self._buf, at, *rec[:3], True)
                    found += 1
                    break
        return found

    def items(self) -> list[Onset]:
        return [Onset(float(t), float(s), float(d)) for t, s, d, x in self._records() if not x]

    def __len__(self) -> int:
        return sum(not r[3] for r in self._records())


class NoteLog(_Ring[NoteEvent]):
    def __init__(self, *, capacity: int) -> None:
        super().__init__(capacity=capacity, rec=_NOTE)

    def extend(self, events: tuple[NoteEvent, ...]) -> None:
        for e in events:
            self._put(
                e.note_id, _TIERS.index(e.tier), _ACTIONS.index(e.action), e.midi_pitch,
                e.onset_s, e.offset_s, e.velocity, e.confidence,
            )  # fmt: skip

    def items(self) -> list[NoteEvent]:
        return [
            NoteEvent(
                note_id=int(i),
                tier=_TIERS[t],
                action=_ACTIONS[a],
                midi_pitch=int(p),
                onset_s=float(on),
                offset_s=float(off),
                velocity=float(v),
                confidence=float(c),
            )
            for i, t, a, p, on, off, v, c in self._records()
        ]
