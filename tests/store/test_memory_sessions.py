"""The memory store's sessions: expired ones are freed when the next session starts."""

from __future__ import annotations

from edge_server.store import MemoryStore, memory


async def test_expired_sessions_are_swept_when_a_session_starts_a_second_later() -> None:
    now = [1000.0]
    m = MemoryStore(ttl_s=2.0, log_keep=4, clock=lambda: now[0])
    for i in range(5):
        await m.create(f"old-{i}", node_id="n1", config=b"")
    assert m.stored_sessions == 5
    now[0] += 2.5  # all five expired; nothing read them since
    await m.create("new-0", node_id="n1", config=b"")
    assert m.stored_sessions == 1  # swept: more than SWEEP_EVERY_S since the store started
    await m.create("new-1", node_id="n1", config=b"")
    assert m.stored_sessions == 2
    now[0] += 2.5  # new-0 and new-1 expired, but the last sweep was 2.5 s ago: swept now
    await m.create("new-2", node_id="n1", config=b"")
    assert m.stored_sessions == 1


async def test_sweeps_are_at_most_one_per_interval() -> None:
    now = [1000.0]
    m = MemoryStore(ttl_s=0.1, log_keep=4, clock=lambda: now[0])
    await m.create("a", node_id="n1", config=b"")
    now[0] += memory.SWEEP_EVERY_S
    await m.create("b", node_id="n1", config=b"")  # sweeps now: "a" expired
    assert m.stored_sessions == 1
    now[0] += memory.SWEEP_EVERY_S / 2  # "b" expired, but the last sweep was just now
    await m.create("c", node_id="n1", config=b"")
    assert m.stored_sessions == 2
