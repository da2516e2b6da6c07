"""The memory store's bounded outbox: its overflow policy, read order and acks."""

from __future__ import annotations

from edge_server.store import MemoryStore
from edge_server.store.outbox import StreamRecord


def _rec(seq: int, kind: str, priority: int) -> StreamRecord:
    return StreamRecord("s", seq, kind, priority, "n1", 0, b"%d" % seq)


async def test_full_outbox_drops_the_oldest_least_important_record() -> None:
    m = MemoryStore(ttl_s=60, log_keep=4, outbox_max=4, outbox_enabled=True)
    for seq, kind, pri in [
        (0, "features", 2),
        (1, "events", 1),
        (2, "features", 2),
        (3, "summary", 0),
    ]:
        m._append(_rec(seq, kind, pri))
    m._append(_rec(4, "events", 1))  # full: the oldest features record (seq 0) goes
    m._append(_rec(5, "events", 1))  # then the other features record (seq 2)
    m._append(_rec(6, "events", 1))  # no features left: the oldest events record (seq 1)
    assert m.outbox_dropped == 3
    assert await m.depth() == 4
    got = await m.read(max_entries=10, block_s=0.1)
    assert [(e.record.seq, e.record.kind) for e in got] == [
        (3, "summary"), (4, "events"), (5, "events"), (6, "events"),
    ]  # fmt: skip


async def test_read_returns_each_entry_once_in_order_and_eviction_spares_nothing_read() -> None:
    m = MemoryStore(ttl_s=60, log_keep=4, outbox_max=3, outbox_enabled=True)
    for seq in range(3):
        m._append(_rec(seq, "features", 2))
    first = await m.read(max_entries=2, block_s=0.1)
    assert [e.record.seq for e in first] == [0, 1]
    m._append(_rec(3, "features", 2))  # full: seq 0 (read, not acked) is the oldest: dropped
    rest = await m.read(max_entries=10, block_s=0.1)
    assert [e.record.seq for e in rest] == [2, 3]
    await m.ack([e.entry_id for e in first + rest])  # acking a dropped entry is harmless
    assert await m.depth() == 0
    assert await m.read(max_entries=10, block_s=0.05) == []
    m._append(_rec(4, "events", 1))
    assert [e.record.seq for e in await m.read(max_entries=10, block_s=0.1)] == [4]


async def test_a_full_outbox_keeps_accepting_at_its_bound() -> None:
    # 50 000 appends past a 10 000 bound (an outage): the bound holds and the newest records,
    # most important first, are the ones kept
    m = MemoryStore(ttl_s=60, log_keep=4, outbox_max=10_000, outbox_enabled=True)
    for seq in range(60_000):
        m._append(_rec(seq, "events" if seq % 2 else "features", 1 if seq % 2 else 2))
    assert await m.depth() == 10_000
    assert m.outbox_dropped == 50_000
    kept = await m.read(max_entries=20_000, block_s=0.1)
    assert all(e.record.kind == "events" for e in kept)
    assert [e.record.seq for e in kept] == list(range(40_001, 60_000, 2))
